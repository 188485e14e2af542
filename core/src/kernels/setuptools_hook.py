"""The setuptools ``egg_info.writers`` hook that embeds ``kernels.lock`` in the package metadata.

setuptools calls it whenever this distribution is in the build environment; the egg-info becomes the
wheel's dist-info, where ``load_kernel`` finds the lock. It uses only :mod:`kernels_lockembed`
(standard library): nothing heavy is imported inside a build.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kernels_lockembed import LockEmbedError, lock_text_for_build


def write_kernels_lock(cmd: Any, basename: str, filename: str) -> None:
    """Copy the project's ``kernels.lock`` into the egg-info, or delete a stale copy.

    A project with ``[tool.kernels.dependencies]`` and no lock fails the build, unless
    ``[tool.kernels] missing-lock = "warn"``.
    """
    root = Path(getattr(cmd.distribution, "src_root", None) or os.getcwd())
    try:
        text = lock_text_for_build(root)
    except LockEmbedError as err:
        raise SystemExit(f"error: {err}") from None
    cmd.write_or_delete_file(basename, filename, text, force=True)
    if text is not None:
        print(f"kernels: embedded kernels.lock from {root}")


def find_lock(dirname: str = "") -> list[str]:
    """setuptools ``file_finders`` hook: list ``kernels.lock`` so sdists carry it.

    Without it a wheel built from the sdist (what ``uv build`` and ``pip install <sdist>`` do) would
    lose the lock unless ``MANIFEST.in`` names it.
    """
    lock = Path(dirname or ".") / "kernels.lock"
    return [str(lock)] if lock.is_file() else []
