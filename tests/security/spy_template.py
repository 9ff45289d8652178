"""A hostile model template: its ``predict`` takes attack orders (strings) and reports what each achieved.

Orders: ``env``, ``uid``, ``setuid0``, ``read:PATH``, ``write:PATH``, ``list:PATH``, ``connect:HOST:PORT``,
``fork:N`` (N sleeping children; how many it got), ``sleep:S``, ``spawn:MARKER`` (a detached grandchild that sleeps with
MARKER on its command line). ``raise`` alone makes ``predict`` raise. Each answer is ``"ok: ..."`` or ``"denied: <error type>"``.
"""

import os
import socket
import subprocess
import sys
import time

from easel.model import BaseModel, FloatKnob


def _attempt(order):
    verb, _, arg = order.partition(":")
    try:
        if verb == "env":
            return "ok: " + " ".join(sorted(os.environ))
        if verb == "uid":
            return f"ok: {os.getuid()} {os.getgid()} {os.getgroups()}"
        if verb == "setuid0":
            os.setuid(0)
            return "ok: became root"
        if verb == "read":
            with open(arg, "rb") as handle:
                return f"ok: read {len(handle.read())} bytes"
        if verb == "write":
            with open(arg, "w") as handle:
                handle.write("owned")
            return "ok: wrote"
        if verb == "list":
            return "ok: " + " ".join(sorted(os.listdir(arg)))
        if verb == "connect":
            host, port = arg.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=3):
                return "ok: connected"
        if verb == "fork":
            started = 0
            try:
                for _ in range(int(arg)):
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(600)
                        os._exit(0)
                    started += 1
            except OSError as error:
                return f"denied: {type(error).__name__} after {started}"
            return f"ok: {started}"
        if verb == "sleep":
            time.sleep(float(arg))
            return "ok: slept"
        if verb == "spawn":
            code = f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)  # {arg}\n"
            subprocess.run([sys.executable, "-c", code, arg], check=True)
            return "ok: spawned"
    except BaseException as error:  # noqa: BLE001 - the spy reports what stopped it
        return f"denied: {type(error).__name__}"
    return "unknown order"


class Spy(BaseModel):
    @classmethod
    def get_knob_config(cls):
        return {"lr": FloatKnob(0.0, 1.0)}

    def train(self, dataset_path, *, context=None, **kwargs):
        with open(dataset_path, "rb") as handle:
            self.size = len(handle.read())
        context.log("read the dataset", size=self.size)

    def evaluate(self, dataset_path, slice_rate=1.0):
        return 0.0

    def predict(self, queries, slice_rate=1.0):
        if list(queries) == ["raise"]:
            raise RuntimeError("the spy failed on purpose")
        return [_attempt(str(order)) for order in queries]

    def dump_parameters(self):
        return b""

    def load_parameters(self, params):
        pass
