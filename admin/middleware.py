"""Request-body size caps in front of every route (pure ASGI, so it sees the body as it streams).

Each route has its cap: small for JSON routes, large only for the upload routes named in ``route_bytes``.
The cap counts the bytes actually received — a chunked body, or one whose ``Content-Length`` lies, is cut
off at the cap too — so no route buffers more than its cap. A request whose body passes the cap is answered
``413`` in the error envelope. The rest of its body is read and thrown away first (up to a bound, never
kept), so an ordinary client that sends the whole body before reading the answer still gets the 413
instead of a broken connection.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_DRAIN_BYTES = 1 << 30


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, route_bytes: dict[tuple[str, str], int] | None = None,
                 drain_bytes: int | None = None) -> None:
        """``max_bytes`` for every route but the ``(method, path)`` pairs of ``route_bytes``."""
        self.app = app
        self.max_bytes = max_bytes
        self.route_bytes = dict(route_bytes or {})
        largest = max([max_bytes, *self.route_bytes.values()])
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(MIN_DRAIN_BYTES, largest + (64 << 20))

    def limit_for(self, scope: Scope) -> int:
        path = scope.get("path", "").rstrip("/") or "/"
        return self.route_bytes.get((scope.get("method", ""), path), self.max_bytes)

    async def _drain(self, receive: Receive, already: int) -> None:
        seen = already
        while seen <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps({
            "error": "too_large",
            "detail": f"the request body is larger than this route's limit of {limit} bytes",
        }).encode()
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    limit = self.limit_for(scope)
        declared = None
        if declared is not None and declared > limit:
            if declared <= self.drain_bytes:
                await self._drain(receive, 0)
            await self._reject(send, limit)
            return

        state: dict[str, Any] = {"over": False, "started": False, "received": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not state["over"]:
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    if message.get("more_body", False):
                        await self._drain(receive, state["received"])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"] and not state["started"]:
                return  # the app's own answer to a truncated body is replaced by the 413 below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._reject(send, limit)
