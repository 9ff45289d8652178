"""Model-template code in a sandbox: a bubblewrap child process, unprivileged, without secrets or network.

* :mod:`~easel.sandbox.bwrap` — what the child sees and as whom it runs (the bwrap command line);
* :mod:`~easel.sandbox.limits` — its rlimits and timeouts (``EASEL_SANDBOX_*``);
* :mod:`~easel.sandbox.process` — starting (a bwrap child, or a model-runner's child: ``EASEL_SANDBOX_MODE``),
  calling and killing it;
* :mod:`~easel.sandbox.runner`, :mod:`~easel.sandbox.handoff` — the model-runner service (Kubernetes: a container
  without secrets beside the worker) and how a sandbox start is handed to it;
* :mod:`~easel.sandbox.uids` — a uid of its own per sandbox started as root;
* :mod:`~easel.sandbox.wire`, :mod:`~easel.sandbox.shm` — the protocol (msgpack frames, shared-memory batches);
* :mod:`~easel.sandbox.child` — the child's side;
* :mod:`~easel.sandbox.proxy` — a :class:`~easel.model.BaseModel` whose methods are calls into the child;
* :mod:`~easel.sandbox.templates` — :func:`open_template`, what workers use.
"""

from __future__ import annotations

from easel.sandbox.errors import SandboxError
from easel.sandbox.limits import SandboxLimits
from easel.sandbox.proxy import SandboxedTemplate
from easel.sandbox.templates import close_template, is_sandboxed, open_sandboxed, open_template, start_sandbox

__all__ = ["SandboxError", "SandboxLimits", "SandboxedTemplate", "close_template", "is_sandboxed",
           "open_sandboxed", "open_template", "start_sandbox"]
