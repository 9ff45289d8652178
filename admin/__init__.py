"""Admin: the FastAPI control plane of Easel.

``create_app(settings)`` in :mod:`admin.app` builds the app; ``python -m admin`` (or ``easel admin``)
serves it with uvicorn; ``easel up`` starts it as a detached process. Routes live in :mod:`admin.routes`
(one module per resource), dependencies (DB session, current user, role checks, paging) in
:mod:`admin.deps`, the error envelope in :mod:`easel.api_errors`, and non-HTTP logic (dataset validation,
template checks, job orchestration) in :mod:`admin.services`.
"""
