"""``python admin_with_fake_launcher.py HOST PORT``: admin whose launcher is the contract fake
(``tests/fake_launcher.py``): it records every service with its command line and starts none, so a test can
place each service on a host itself, as a cluster scheduler would."""

from __future__ import annotations

import sys

import uvicorn
from fake_launcher import FakeLauncher

from admin.app import create_app
from easel.settings import get_settings

if __name__ == "__main__":
    uvicorn.run(create_app(get_settings(), FakeLauncher), host=sys.argv[1], port=int(sys.argv[2]),
                log_level="warning")
