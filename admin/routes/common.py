"""Small helpers shared by the route modules: paging a query, refusing query parameters a route does not take."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from admin.deps import PageParams
from easel.api_errors import Invalid


def paginate(db: Session, stmt: Select[Any], page: PageParams) -> tuple[list[Any], int]:
    """The rows of ``stmt`` in ``page`` and the total count (``stmt`` must be ordered)."""
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(db.scalars(stmt.offset(page.offset).limit(page.limit)))
    return items, total


def only_query(*names: str) -> Any:
    """A dependency refusing (422) query parameters other than ``names``: a misspelt ``limt=5`` is an error,
    not silently the default."""
    allowed = set(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise Invalid(f"unknown query parameters: {', '.join(unknown)[:200]} (this route takes: "
                          f"{', '.join(sorted(allowed)) or 'none'})")

    return check
