"""Admin: the FastAPI control plane (filled in by the admin issue)."""
