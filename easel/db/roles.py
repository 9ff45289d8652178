"""Least privilege in PostgreSQL: one login role per kind of service, each granted only what it uses.

``easel_admin`` owns the database and its schema and runs the migrations; every other service connects as
its own role with the grants below (table by table, so a new table is nobody's until it is listed here):

============  ================================================================================================
role          may
============  ================================================================================================
advisor       read ``train_jobs``, ``sub_train_jobs``, ``models`` (the knob space), ``datasets`` (MOP mode
              shards the training set); insert, read and update
              ``trials`` (proposals, re-issues, ends); update ``train_jobs``/``sub_train_jobs`` status;
              read and update ``services`` (its clean exit)
train         read ``train_jobs``, ``sub_train_jobs``, ``models``, ``datasets``; read and update ``trials``
              (claim, result); insert ``trial_logs``; read and update ``services`` (port, clean exit)
inference     (inference workers, explainers, the promotion gate's evaluation child) read ``inference_jobs``,
              ``train_jobs``, ``sub_train_jobs``, ``trials``, ``models``, ``model_versions``, ``datasets``;
              read and update ``explanations`` (claim, complete, fail); read and update ``services``
predictor     read ``inference_jobs`` and update them (its URL, RUNNING); read ``train_jobs``,
              ``sub_train_jobs``, ``trials``, ``models``, ``model_versions``; insert and read
              ``explanations``; read ``predictor_keys`` (to verify API keys); read and update ``services``
============  ================================================================================================

No service role can read ``users`` (password hashes) or write ``models``, ``model_versions``, ``datasets`` or
``predictor_keys``; none touches the registry's history, feedback, monitoring samples or ``apps`` (an app's options:
admin's alone).
``UPDATE ... WHERE`` needs ``SELECT`` on the columns it reads, so every updated table is readable too.
"""

from __future__ import annotations

from typing import Any

from easel.db.enums import ServiceKind

ADMIN_ROLE = "easel_admin"
ROLE_PREFIX = "easel_"

#: which database role each kind of service connects as (admin, and OTHER test services, as the owner)
SERVICE_ROLES: dict[ServiceKind, str] = {
    ServiceKind.ADVISOR: "advisor",
    ServiceKind.TRAIN_WORKER: "train",
    ServiceKind.INFERENCE_WORKER: "inference",
    ServiceKind.EXPLAINER: "inference",
    ServiceKind.PREDICTOR: "predictor",
}

R, RU, RI, RIU = "SELECT", "SELECT, UPDATE", "SELECT, INSERT", "SELECT, INSERT, UPDATE"
GRANTS: dict[str, dict[str, str]] = {
    "advisor": {"train_jobs": RU, "sub_train_jobs": RU, "models": R, "datasets": R, "trials": RIU,
                "services": RU},
    "train": {"train_jobs": R, "sub_train_jobs": R, "models": R, "datasets": R, "trials": RU, "trial_logs": RI,
              "services": RU},
    "inference": {"inference_jobs": R, "train_jobs": R, "sub_train_jobs": R, "trials": R, "models": R,
                  "model_versions": R, "datasets": R, "explanations": RU, "services": RU},
    "predictor": {"inference_jobs": RU, "train_jobs": R, "sub_train_jobs": R, "trials": R, "models": R,
                  "model_versions": R, "explanations": RI, "predictor_keys": R, "services": RU},
}
SERVICE_ROLE_NAMES = tuple(GRANTS)


def role_name(role: str) -> str:
    """The PostgreSQL role of a service role (``advisor`` -> ``easel_advisor``; ``admin`` -> ``easel_admin``)."""
    if role != "admin" and role not in GRANTS:
        raise ValueError(f"role must be admin or one of {', '.join(GRANTS)}, not {role!r}")
    return ROLE_PREFIX + role


def ensure_role(connection: Any, name: str, password: str) -> None:
    """Create login role ``name`` (or reset its password to ``password``); ``connection`` is a superuser's
    psycopg connection in autocommit mode."""
    from psycopg import sql

    exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    connection.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                           sql.Literal(password)))


def apply_grants(connection: Any) -> list[str]:
    """Grant each service role that exists exactly :data:`GRANTS` on the tables that exist (revoking anything
    else it had on them); run in one transaction as the schema's owner (or a superuser) after the migrations.
    Returns ``role:table`` for each grant made."""
    from psycopg import sql

    tables = {row[0] for row in connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()}
    existing = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles").fetchall()}
    granted = []
    for role, table_grants in GRANTS.items():
        if role_name(role) not in existing:  # a deployment that connects every service as one role
            continue
        name = sql.Identifier(role_name(role))
        for table in sorted(tables - {"alembic_version"}):
            connection.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), name))
        for table, privileges in table_grants.items():
            if table not in tables:
                continue
            connection.execute(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), name))
            granted.append(f"{role}:{table}")
            if "INSERT" in privileges:  # a serial id's sequence
                sequence = connection.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
                if sequence and sequence[0]:
                    connection.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                        sql.SQL(sequence[0]), name))
    return granted


def grant_service_roles(engine: Any) -> list[str]:
    """:func:`apply_grants` through a SQLAlchemy engine (admin's, the owner's) — nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    raw = engine.raw_connection()
    try:
        granted = apply_grants(raw.driver_connection)
        raw.commit()
        return granted
    finally:
        raw.close()


__all__ = ["ADMIN_ROLE", "GRANTS", "SERVICE_ROLES", "SERVICE_ROLE_NAMES", "apply_grants", "ensure_role",
           "grant_service_roles", "role_name"]
