"""A deliberately hostile or broken Hub for reliability tests: it answers whatever a test scripts.

It is a real HTTP server on loopback (the real client talks to it); each route maps an exact URL
path to (status, headers, body). It records every request's path and headers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class HostileHub:
    """``routes[path] = (status, headers, body)``; unknown paths get a Hub-style 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, head_only: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.seen.append((path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = hub.routes.get(
                    path,
                    (
                        404,
                        {"X-Error-Code": "RepoNotFound", "X-Error-Message": "no"},
                        b'{"error":"no"}',
                    ),
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(False)

            def do_HEAD(self) -> None:
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: stop() waits for the serving loop to notice it.
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def json(
        self, path: str, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``path`` with ``data`` as JSON."""
        self.routes[path] = (
            status,
            {"Content-Type": "application/json", **(headers or {})},
            json.dumps(data).encode(),
        )

    def raw(
        self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``path`` with raw bytes."""
        self.routes[path] = (status, headers or {}, body)

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
