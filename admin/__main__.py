"""``python -m admin``: serve the admin API with uvicorn (``easel admin`` runs this too)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import time
from collections.abc import Sequence

from easel.credentials import apply_local_credentials
from easel.settings import Settings, SettingsError, get_settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def listen_refusal(settings: Settings, host: str) -> str | None:
    """Why admin must not listen on ``host`` with these settings, or None when it may."""
    if is_loopback(host) or not settings.uses_development_credentials:
        return None
    return (f"refusing to listen on {host}: the public development signing key or superadmin password is in use. "
            "Set EASEL_SECRET_KEY and EASEL_SUPERADMIN_PASSWORD (or run `easel up`, which generates both), "
            "or bind to 127.0.0.1")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin", description="Serve the Easel admin REST API")
    parser.add_argument("--host", help="bind address (default EASEL_ADMIN_HOST)")
    parser.add_argument("--port", type=int, help="port (default EASEL_ADMIN_PORT)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    try:
        settings = apply_local_credentials(get_settings())
    except (SettingsError, ValueError) as error:
        print(f"admin: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.admin_host
    refusal = listen_refusal(settings, host)
    if refusal is not None:
        print(f"admin: {refusal}", file=sys.stderr)
        return 2
    import psutil
    import uvicorn

    from admin.app import create_app

    boot = {"process": psutil.Process().create_time(), "imported": time.time()}

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings, boot=boot), host=host, port=args.port or settings.admin_port,
                log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
