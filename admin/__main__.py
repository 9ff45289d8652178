"""``python -m admin``: serve the admin API with uvicorn (``easel admin`` runs this too)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from easel.settings import SettingsError, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin", description="Serve the Easel admin REST API")
    parser.add_argument("--host", help="bind address (default EASEL_ADMIN_HOST)")
    parser.add_argument("--port", type=int, help="port (default EASEL_ADMIN_PORT)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as error:
        print(f"admin: {error}", file=sys.stderr)
        return 2
    import uvicorn

    from admin.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=args.host or settings.admin_host, port=args.port or settings.admin_port,
                log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
