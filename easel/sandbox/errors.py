"""The one error sandboxed template code surfaces to the platform."""

from __future__ import annotations

MAX_MESSAGE = 4000  # characters of a child's error the platform passes on (trial error, checker's 422)


class SandboxError(RuntimeError):
    """Template code in a sandbox failed, or the sandbox itself died or timed out.

    The message is the template's own error (its exception type, message and traceback tail, truncated),
    or what the parent saw (exit status, timeout) — never anything else the child wrote or read.
    ``kind`` is the child's exception type name (``"Timeout"``, ``"Died"`` for the parent's own verdicts),
    ``detail`` the child's exception message alone.
    """

    def __init__(self, message: str, *, kind: str = "SandboxError", detail: str | None = None) -> None:
        super().__init__(truncate(message))
        self.kind = kind
        self.detail = truncate(detail if detail is not None else message, 2000)


def truncate(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters: its start (what failed) and its end (where a traceback names the
    failing line), the middle elided."""
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return text[:head] + " … " + text[-(limit - 3 - head):]
