"""The server object (:class:`HubServer`) and the blocking entry point of ``kernels serve``."""

from __future__ import annotations

import errno
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType

from kernels.errors import KernelsError
from kernels.fsutil import fs_error
from kernels.server.control import Fault, RequestRecord, ServerControls
from kernels.server.gitstore import GitStore
from kernels.server.handler import HubHTTPServer
from kernels.server.routes import HubApp
from kernels.server.trusted import TrustedOrgs


class HubServer:
    """A Hub-compatible HTTP server over bare git repositories under ``root``.

    ``start()`` serves in a daemon thread; ``endpoint`` is the URL to give ``huggingface_hub``.
    ``latency_ms`` (settable while running) delays every answer; ``rate_limit`` (requests per
    second, settable) answers 429 with ``Retry-After`` beyond it. ``requests()`` returns the log
    of answered requests; ``add_fault()`` injects failures for reliability tests.
    ``trusted_orgs`` (settable) and ``ROOT/trusted-orgs`` name the organisations it marks as
    trusted kernel publishers (``*``: all); other organisations are not trusted.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        trusted_orgs: Iterable[str] = (),
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self._controls = ServerControls(latency_ms, rate_limit)
        self._trusted = TrustedOrgs(self.root, trusted_orgs)
        self._store: GitStore | None = None
        self._httpd: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- life cycle

    def start(self) -> HubServer:
        """Bind and serve in a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError("HubServer already started")
        store = GitStore(self.root)
        app = HubApp(
            store, page_size=lambda: self._controls.page_size, trusted=self._trusted.trusts
        )
        try:
            httpd = HubHTTPServer((self.host, self.port), app, self._controls)
        except BaseException:
            store.close()
            raise
        self._store, self._httpd = store, httpd
        self.port = int(httpd.server_address[1])
        httpd.endpoint = self.endpoint
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"kernels-hub-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and end the git processes."""
        httpd, thread, store = self._httpd, self._thread, self._store
        self._httpd = self._thread = self._store = None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=10)
        if store is not None:
            store.close()

    def __enter__(self) -> HubServer:
        return self.start() if self._httpd is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``http://HOST:PORT`` (a wildcard bind address is shown as loopback)."""
        if self._httpd is None:
            raise RuntimeError("HubServer not started")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ---------------------------------------------------------------- settings

    @property
    def latency_ms(self) -> float:
        """Milliseconds every answer is delayed by (requests overlap: it is not a throttle)."""
        return self._controls.latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_ms must be >= 0")
        self._controls.latency_ms = float(value)

    @property
    def trusted_orgs(self) -> frozenset[str]:
        """Organisations marked as trusted kernel publishers (besides ``ROOT/trusted-orgs``)."""
        return self._trusted.configured

    @trusted_orgs.setter
    def trusted_orgs(self, orgs: Iterable[str]) -> None:
        self._trusted.configured = frozenset(orgs)

    @property
    def rate_limit(self) -> float | None:
        """Requests per second answered normally (bursts up to one second's worth); beyond it,
        429 with ``Retry-After`` and ``RateLimit`` headers. ``None``: no limit. Setting it
        starts a full bucket."""
        return self._controls.limiter.rate

    @rate_limit.setter
    def rate_limit(self, value: float | None) -> None:
        self._controls.limiter.rate = value

    @property
    def tree_page_size(self) -> int:
        """Entries per page of tree and commit listings (the Hub uses 1000)."""
        return self._controls.page_size

    @tree_page_size.setter
    def tree_page_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("tree_page_size must be >= 1")
        self._controls.page_size = int(value)

    # ---------------------------------------------------------------- accounting

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first: the requests answered so far among those that
        arrived since the last :meth:`reset_requests` (each is logged just before its answer goes
        out, so a client that got its answer finds it here)."""
        return self._controls.log.snapshot()

    def reset_requests(self) -> None:
        """Empty the log. Requests that arrived before this call are never logged, even when
        their answer comes later (a delayed answer, a client killed while waiting)."""
        self._controls.log.clear()

    # ---------------------------------------------------------------- faults

    def add_fault(
        self,
        *,
        path_regex: str,
        method: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        retry_after: float | None = None,
        delay_s: float = 0.0,
        truncate_at: int | None = None,
        corrupt: bool = False,
    ) -> None:
        """Make the next ``times`` matching requests (``None``: all) misbehave.

        A rule matches when ``method`` (``None``: any) equals the request method and
        ``re.search(path_regex, ...)`` finds the unquoted URL path, without or with its query
        string. Effects: sleep ``delay_s`` first; then answer ``status`` (with ``Retry-After:
        retry_after`` when given) without touching the repos, or else answer normally but send
        only ``truncate_at`` body bytes and close the connection (``Content-Length`` still
        announces the full size), and/or flip bytes of the body (``corrupt``). A request triggers
        at most one rule: the first one added that matches.
        """
        self._controls.faults.add(
            Fault(
                path_regex=re.compile(path_regex),
                method=method.upper() if method is not None else None,
                remaining=times,
                status=status,
                retry_after=retry_after,
                delay_s=delay_s,
                truncate_at=truncate_at,
                corrupt=corrupt,
            )
        )

    def clear_faults(self) -> None:
        self._controls.faults.clear()


def serve_forever(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0.0,
    rate_limit: float | None = None,
    trusted_orgs: Iterable[str] = (),
) -> None:
    """Serve ``root`` until SIGINT or SIGTERM; print the endpoint as the first line of stdout.

    A ``root`` that is not a folder, or an address that cannot be bound (the port is in use, the
    host is not this machine's), raises ``KernelsError`` saying what to change.
    """
    hub = _started(Path(root), host, port, latency_ms, rate_limit, trusted_orgs)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, object] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: the caller handles signals
            pass
    try:
        with hub:
            sys.stdout.write(hub.endpoint + "\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _started(
    root: Path,
    host: str,
    port: int,
    latency_ms: float,
    rate_limit: float | None = None,
    trusted_orgs: Iterable[str] = (),
) -> HubServer:
    """A started :class:`HubServer`, or ``KernelsError`` naming what stops it from starting."""
    if root.exists() and not root.is_dir():
        raise KernelsError(
            f"ROOT {root} is a file; give a folder (it holds the served git repositories)"
        )
    try:
        return HubServer(
            root,
            host=host,
            port=port,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            trusted_orgs=trusted_orgs,
        ).start()
    except OSError as err:
        where = f"{host}:{port}"
        if err.errno == errno.EADDRINUSE:
            raise KernelsError(
                f"port {port} on {host} is already in use; pick another with --port "
                "(--port 0 picks a free one)"
            ) from None
        if err.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
            err, socket.gaierror
        ):
            raise KernelsError(
                f"cannot listen on {where}: {host} is not an address of this machine; "
                "pass --host 127.0.0.1 (or 0.0.0.0 for every interface)"
            ) from None
        if err.errno == errno.EACCES and 0 < port < 1024:
            raise KernelsError(
                f"cannot listen on {where}: ports below 1024 need privileges; "
                "use a port >= 1024 (or --port 0)"
            ) from None
        raise fs_error(err, root) from err
