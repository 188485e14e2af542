"""HTTP/1.1 plumbing: a thread per connection, keep-alive, latency, rate limit, faults, accounting.

The handler reads every request body fully (so that connections can be reused), answers 429 beyond
the rate limit, applies the simulated latency and the first matching fault rule, asks :class:`~kernels.server.routes.HubApp`
for the answer and writes it with an exact ``Content-Length`` (also on ``HEAD``), never compressed.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from kernels.server.control import Fault, RequestRecord, ServerControls
from kernels.server.responses import HubError, Response, json_response
from kernels.server.routes import HubApp, Request

logger = logging.getLogger("kernels.server")

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")
MAX_BODY = 8 * 1024 * 1024 * 1024


class _BadRequest(Exception):
    pass


class HubHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its app and controls and can drop open connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(
        self, address: tuple[str, int], app: HubApp, controls: ServerControls, endpoint: str = ""
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.controls = controls
        self.endpoint = endpoint
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, HubRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client that went away: not our error
            return
        logger.exception("Error on a connection from %s", client_address)

    def close_connections(self) -> None:
        """Shut down every open connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kernels-hub"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after that

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET
    do_PATCH = do_GET
    do_OPTIONS = do_GET

    # ---------------------------------------------------------------- request

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BadRequest("Invalid Content-Length") from None
        if length < 0 or length > MAX_BODY:
            raise _BadRequest("Invalid Content-Length")
        data = self.rfile.read(length)
        if len(data) != length:
            raise _BadRequest("Incomplete body")
        return data

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("Invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _BadRequest("Body too large")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _BadRequest("Incomplete body")
            body += chunk
            self.rfile.readline(65537)

    def _base_url(self) -> str:
        host = self.headers.get("Host", "")
        if host and _HOST.fullmatch(host):
            return f"http://{host}"
        return cast(HubHTTPServer, self.server).endpoint

    # ---------------------------------------------------------------- serve

    def _serve(self) -> None:
        server = cast(HubHTTPServer, self.server)
        controls = server.controls
        arrived = controls.log.epoch()
        target = self.path
        if not target.startswith("/"):
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        raw_path, _, query = target.partition("?")
        logged_path = unquote(target, errors="replace")
        fault: Fault | None = None
        try:
            body = self._read_body()
        except _BadRequest as e:
            self.close_connection = True
            self._send(HubError(400, str(e)).to_response(), logged_path, None, arrived)
            return
        # The limit is checked on arrival, before faults: a refused request triggers no rule.
        wait = controls.limiter.take()
        fault = (
            controls.faults.take(self.command, (unquote(raw_path, errors="replace"), logged_path))
            if wait is None
            else None
        )
        delay = controls.latency_ms / 1000.0 + (fault.delay_s if fault is not None else 0.0)
        if delay > 0:
            time.sleep(delay)
        if wait is not None:
            response = json_response(
                {"error": f"Rate limit reached: {controls.limiter.rate:g} requests per second"},
                429,
                controls.limiter.headers(wait),
            )
        elif fault is not None and fault.status is not None:
            headers = []
            if fault.retry_after is not None:
                headers.append(("Retry-After", f"{fault.retry_after:g}"))
            response = json_response(
                {"error": f"Injected fault: HTTP {fault.status}"}, fault.status, headers
            )
        else:
            request = Request(
                method=self.command,
                path=raw_path,
                query=parse_qs(query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                base_url=self._base_url(),
            )
            try:
                response = server.app.dispatch(request)
            except Exception:
                logger.exception("Error while answering %s %s", self.command, logged_path)
                response = json_response({"error": "Internal server error"}, 500)
        self._send(response, logged_path, fault, arrived)

    def _send(
        self, response: Response, logged_path: str, fault: Fault | None, arrived: int
    ) -> None:
        controls = cast(HubHTTPServer, self.server).controls
        head = self.command == "HEAD"
        length = response.length
        truncate_at = fault.truncate_at if fault is not None else None
        corrupt = fault is not None and fault.corrupt
        chunks: Iterator[bytes] = iter(())
        first = b""
        if not head and length:
            # Pull the first chunk before the headers go out: a read error still becomes a 500.
            try:
                chunks = response.chunks()
                first = next(chunks, b"")
            except Exception:
                logger.exception("Error while reading the body of %s", logged_path)
                response = json_response({"error": "Internal server error"}, 500)
                length = response.length
                chunks = response.chunks()
        planned = 0 if head else length if truncate_at is None else min(truncate_at, length)
        # Recorded before the answer goes out: a client that got its answer finds it in the log;
        # unless the log was reset since the request arrived (its epoch is then gone).
        controls.log.append(
            RequestRecord(self.command, logged_path, response.status, planned), arrived
        )
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if not head:
                self._write_body(first, chunks, length, truncate_at, corrupt)
            self.wfile.flush()
        except Exception as e:  # the client went away, or the body failed mid-way
            if not isinstance(e, OSError):
                logger.exception("Error while sending %s", logged_path)
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if truncate_at is not None and truncate_at < length:
            self.close_connection = True

    def _write_body(
        self,
        first: bytes,
        chunks: Iterator[bytes],
        length: int,
        truncate_at: int | None,
        corrupt: bool,
    ) -> None:
        limit = length if truncate_at is None else min(truncate_at, length)
        flips = {0, length // 2, length - 1} if corrupt and length else set()
        offset = 0

        def all_chunks() -> Iterator[bytes]:
            if first:
                yield first
            yield from chunks

        for chunk in all_chunks():
            if offset >= limit:
                break
            chunk = chunk[: limit - offset]
            hits = [p - offset for p in flips if offset <= p < offset + len(chunk)]
            if hits:
                mutable = bytearray(chunk)
                for i in hits:
                    mutable[i] ^= 0xFF
                chunk = bytes(mutable)
            self.wfile.write(chunk)
            offset += len(chunk)
        if offset < limit:
            raise OSError("body ended early")
