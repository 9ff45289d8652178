"""`make demo`: bring the real local stack up, show its health, and bring it down again.

Later stages of the life cycle (upload, tuning, serving) join this script as they land.
"""

from __future__ import annotations

import sys
import time

from easel.cli import main as cli_main
from easel.settings import get_settings


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def main() -> int:
    settings = get_settings()
    timings: dict[str, float] = {}

    began = _stage(f"1. easel up  (data dir {settings.data_dir})")
    if cli_main(["up"]) != 0:
        return 1
    timings["up"] = time.perf_counter() - began

    began = _stage("2. easel status")
    healthy = cli_main(["status"]) == 0
    timings["status"] = time.perf_counter() - began

    began = _stage("3. easel down")
    cli_main(["down"])
    timings["down"] = time.perf_counter() - began

    print("\n=== timings ===")
    for step, seconds in timings.items():
        print(f"  {step:<8} {seconds:6.2f}s")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
