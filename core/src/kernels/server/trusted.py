"""Which organisations the server marks as trusted kernel publishers.

Clients (this library, and ``kernels`` 0.17.2) refuse kernels of an organisation the Hub does not
mark ``trustedKernelPublisher`` unless the caller opts in. A server trusts an organisation named by
its configuration: the ``trusted_orgs`` it was started with (``kernels serve --trust-org ORG``) and
the lines of ``ROOT/trusted-orgs`` (one organisation per line, ``#`` comments; read on every
request, so edits apply at once). ``*`` trusts every organisation. Nothing else is trusted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

TRUST_FILE = "trusted-orgs"
"""The file under the server's root that lists trusted organisations."""


class TrustedOrgs:
    """The trusted organisations of one server: a settable set plus ``ROOT/trusted-orgs``."""

    def __init__(self, root: Path, orgs: Iterable[str] = ()) -> None:
        self.path = Path(root) / TRUST_FILE
        self._orgs = frozenset(orgs)
        self._lock = threading.Lock()

    @property
    def configured(self) -> frozenset[str]:
        """The organisations given to the server (not those of the file)."""
        with self._lock:
            return self._orgs

    @configured.setter
    def configured(self, orgs: Iterable[str]) -> None:
        with self._lock:
            self._orgs = frozenset(orgs)

    def from_file(self) -> set[str]:
        """The organisations listed in ``ROOT/trusted-orgs`` now (none when it does not exist)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {s for line in text.splitlines() if (s := line.split("#", 1)[0].strip())}

    def trusts(self, org: str) -> bool:
        """Whether ``org`` is a trusted kernel publisher on this server."""
        orgs = self.configured | self.from_file()
        return "*" in orgs or org in orgs
