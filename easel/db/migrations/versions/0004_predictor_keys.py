"""predictor keys: per-inference-job API keys, stored hashed

Revision ID: 0004
Revises: 0005 (re-chained after registry)
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "predictor_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inference_job_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["inference_job_id"], ["inference_jobs.id"],
                                name=op.f("fk_predictor_keys_inference_job_id_inference_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_predictor_keys_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictor_keys")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_predictor_keys_secret_hash")),
    )
    with op.batch_alter_table("predictor_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_predictor_keys_inference_job_id"), ["inference_job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("predictor_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictor_keys_inference_job_id"))
    op.drop_table("predictor_keys")
