"""declarative tasks: a dataset's schema, a template's declared fit, a train job's candidate choice, app options

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("schema", JSON, nullable=True))
        batch.add_column(sa.Column("schema_status", sa.String(length=16), nullable=False, server_default="inferred"))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("fits", JSON, nullable=True))
    with op.batch_alter_table("train_jobs") as batch:
        batch.add_column(sa.Column("candidates", JSON, nullable=True))
    op.create_table(
        "apps",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("auto_update", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("auto_tune", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_apps_owner_id_users"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_apps")),
    )
    op.create_index(op.f("ix_apps_owner_id"), "apps", ["owner_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_apps_owner_id"), table_name="apps")
    op.drop_table("apps")
    with op.batch_alter_table("train_jobs") as batch:
        batch.drop_column("candidates")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("fits")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("schema_status")
        batch.drop_column("schema")
