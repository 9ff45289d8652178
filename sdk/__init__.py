"""Python client of the Easel REST API (httpx only)."""
