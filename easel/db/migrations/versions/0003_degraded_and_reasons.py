"""inference jobs may be DEGRADED; jobs record why they ended ERRORED

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("STARTED", "RUNNING", "STOPPED", "COMPLETED", "ERRORED")
NEW = (*OLD, "DEGRADED")
TABLES = {"train_jobs": "train_job_status", "sub_train_jobs": "sub_train_job_status",
          "inference_jobs": "inference_job_status"}


def _values(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _status_check(values: Sequence[str]) -> None:
    for table, name in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_{name}"), f"status IN ({_values(values)})")


def upgrade() -> None:
    _status_check(NEW)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("error")
    _status_check(OLD)
