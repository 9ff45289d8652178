"""explanations: LIME and Grad-CAM records; the EXPLAINER service kind

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
KINDS = ("ADMIN", "ADVISOR", "TRAIN_WORKER", "PREDICTOR", "INFERENCE_WORKER", "OTHER")
STATUSES = ("PENDING", "RUNNING", "COMPLETED", "ERRORED")


def _service_kinds(kinds: Sequence[str]) -> None:
    # The kind is a checked string: widen (or narrow) the check to the kinds that may be stored.
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_services_service_kind"), type_="check")
        batch_op.create_check_constraint("service_kind", sa.column("kind").in_(kinds))


def upgrade() -> None:
    op.create_table(
        "explanations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inference_job_id", sa.String(length=36), nullable=False),
        sa.Column("trial_id", sa.String(length=36), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("slice_rate", sa.Float(), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="explanation_status", native_enum=False, create_constraint=True,
                                    length=32), nullable=False),
        sa.Column("instance_key", sa.String(length=512), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("class_index", sa.Integer(), nullable=True),
        sa.Column("probabilities", JSON, nullable=True),
        sa.Column("weights", JSON, nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("heatmap_key", sa.String(length=512), nullable=True),
        sa.Column("overlay_key", sa.String(length=512), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("compute_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["inference_job_id"], ["inference_jobs.id"],
                                name=op.f("fk_explanations_inference_job_id_inference_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_explanations_trial_id_trials"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_explanations")),
    )
    with op.batch_alter_table("explanations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_explanations_inference_job_id"), ["inference_job_id"], unique=False)
    _service_kinds((*KINDS, "EXPLAINER"))


def downgrade() -> None:
    op.execute("DELETE FROM services WHERE kind = 'EXPLAINER'")
    _service_kinds(KINDS)
    with op.batch_alter_table("explanations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_explanations_inference_job_id"))
    op.drop_table("explanations")
