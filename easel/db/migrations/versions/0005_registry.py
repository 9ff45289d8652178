"""model registry: versions with stages and their history, promotion verdicts, rolling updates, feedback,
serving samples

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAGES = ("staging", "production", "archived")
UPDATE_STATUSES = ("RUNNING", "COMPLETED", "ERRORED")


def _enum(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.String(length=36), nullable=False)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        _id(),
        sa.Column("app", sa.String(length=255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _id("trial_id"), _id("model_id"), _id("train_dataset_id"),
        sa.Column("knobs", JSON, nullable=False),
        sa.Column("params_key", sa.String(length=512), nullable=False),
        sa.Column("profile", JSON, nullable=False),
        sa.Column("stage", _enum(STAGES, "model_stage"), nullable=False),
        _id("owner_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("model_versions", "trial_id", "trials", "RESTRICT"),
        _fk("model_versions", "model_id", "models", "RESTRICT"),
        _fk("model_versions", "train_dataset_id", "datasets", "RESTRICT"),
        _fk("model_versions", "owner_id", "users", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("app", "number", name="uq_model_versions_app_number"),
    )
    op.create_index(op.f("ix_model_versions_app"), "model_versions", ["app"])
    op.create_index(op.f("ix_model_versions_owner_id"), "model_versions", ["owner_id"])
    # At most one production version per app, whatever races the routes lose.
    op.create_index("uq_model_versions_production", "model_versions", ["app"], unique=True,
                    postgresql_where=sa.text("stage = 'production'"), sqlite_where=sa.text("stage = 'production'"))
    op.create_table(
        "promotion_verdicts",
        _id(), _id("version_id"),
        sa.Column("against_version_id", sa.String(length=36), nullable=True),
        sa.Column("dataset_id", sa.String(length=36), nullable=True),
        sa.Column("tolerance", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("overridden", sa.Boolean(), nullable=False),
        sa.Column("numbers", JSON, nullable=False),
        _id("by_user_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("promotion_verdicts", "version_id", "model_versions", "CASCADE"),
        _fk("promotion_verdicts", "against_version_id", "model_versions", "SET NULL"),
        _fk("promotion_verdicts", "dataset_id", "datasets", "RESTRICT"),
        _fk("promotion_verdicts", "by_user_id", "users", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_verdicts")),
    )
    op.create_index(op.f("ix_promotion_verdicts_version_id"), "promotion_verdicts", ["version_id"])
    op.create_table(
        "model_stage_changes",
        sa.Column("id", BIGID, nullable=False),
        _id("version_id"),
        sa.Column("from_stage", _enum(STAGES, "model_stage_from"), nullable=True),
        sa.Column("to_stage", _enum(STAGES, "model_stage_to"), nullable=False),
        _id("by_user_id"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verdict_id", sa.String(length=36), nullable=True),
        _fk("model_stage_changes", "version_id", "model_versions", "CASCADE"),
        _fk("model_stage_changes", "by_user_id", "users", "RESTRICT"),
        _fk("model_stage_changes", "verdict_id", "promotion_verdicts", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_stage_changes")),
    )
    op.create_index(op.f("ix_model_stage_changes_version_id"), "model_stage_changes", ["version_id"])
    op.create_table(
        "inference_job_updates",
        _id(), _id("inference_job_id"),
        sa.Column("from_version_id", sa.String(length=36), nullable=True),
        _id("to_version_id"),
        sa.Column("status", _enum(UPDATE_STATUSES, "update_status"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _id("by_user_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        _fk("inference_job_updates", "inference_job_id", "inference_jobs", "CASCADE"),
        _fk("inference_job_updates", "from_version_id", "model_versions", "SET NULL"),
        _fk("inference_job_updates", "to_version_id", "model_versions", "RESTRICT"),
        _fk("inference_job_updates", "by_user_id", "users", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_job_updates")),
    )
    op.create_index(op.f("ix_inference_job_updates_inference_job_id"), "inference_job_updates", ["inference_job_id"])
    op.create_table(
        "feedback",
        sa.Column("id", BIGID, nullable=False),
        _id("inference_job_id"),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("served", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _fk("feedback", "inference_job_id", "inference_jobs", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("inference_job_id", "task_id", name="uq_feedback_inference_job_id"),
    )
    op.create_index(op.f("ix_feedback_inference_job_id"), "feedback", ["inference_job_id"])
    op.create_table(
        "serving_samples",
        sa.Column("id", BIGID, nullable=False),
        _id("inference_job_id"),
        sa.Column("app", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("values", JSON, nullable=False),
        _fk("serving_samples", "inference_job_id", "inference_jobs", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_samples")),
    )
    op.create_index("ix_serving_samples_app_at", "serving_samples", ["app", "at"])
    op.create_index(op.f("ix_serving_samples_inference_job_id"), "serving_samples", ["inference_job_id"])
    for table in ("inference_jobs", "services"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("model_version_id", sa.String(length=36), nullable=True))
            batch.create_foreign_key(op.f(f"fk_{table}_model_version_id_model_versions"), "model_versions",
                                     ["model_version_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    for table in ("services", "inference_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"fk_{table}_model_version_id_model_versions"), type_="foreignkey")
            batch.drop_column("model_version_id")
    for table in ("serving_samples", "feedback", "inference_job_updates", "model_stage_changes", "promotion_verdicts",
                  "model_versions"):
        op.drop_table(table)
