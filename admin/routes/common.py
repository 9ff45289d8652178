"""Small helpers shared by the route modules: paging a query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from admin.deps import PageParams


def paginate(db: Session, stmt: Select[Any], page: PageParams) -> tuple[list[Any], int]:
    """The rows of ``stmt`` in ``page`` and the total count (``stmt`` must be ordered)."""
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(db.scalars(stmt.offset(page.offset).limit(page.limit)))
    return items, total
