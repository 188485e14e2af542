"""What the GPU examples (``cuda_e2e.py``, ``cuda_arch_check.py``, ``cuda_layers.py``) share: their
checks and summary, and a scratch folder set up as the cache of a local Hub."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    """Print ``what`` as ``[ok]`` or ``[FAIL]``; a failure is remembered for :func:`summary`."""
    print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        FAILURES.append(what)


def summary() -> int:
    """Print the outcome of every check; return the script's exit status (0: all passed)."""
    print("\nall checks passed" if not FAILURES else f"\nFAILED: {'; '.join(FAILURES)}")
    return 1 if FAILURES else 0


def scratch(prefix: str) -> Path:
    """A new temporary folder whose ``cache`` the Hugging Face cache now is, with the environment a
    local Hub needs (no telemetry, no proxy for loopback, a dummy token)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        HF_HUB_CACHE=str(tmp / "cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        HF_TOKEN="hf_local_token",
    )
    return tmp
