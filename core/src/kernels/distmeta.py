"""Finding the ``kernels.lock`` of the package that calls ``load_kernel``.

The caller is the first stack frame outside this library. Its distribution is the installed one whose
dist-info holds ``kernels.lock`` and that owns the caller's top-level package: by ``top_level.txt``,
by its RECORD, or, for editable installs that record only a ``.pth`` file, by ``direct_url.json``
pointing at a folder that contains the caller's file. A caller that is not installed (a script in a
source checkout) finds ``kernels.lock`` beside the nearest ``pyproject.toml`` above its file; code with
no file (``python -c``, the interactive prompt) looks from the working directory instead.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlparse

from kernels.lockfile import LOCK_NAME


@dataclass(frozen=True)
class Caller:
    """Where ``load_kernel`` was called from."""

    module: str
    file: Path | None


def find_caller(skip_prefix: str = "kernels") -> Caller:
    """The first frame whose module is not ``kernels`` or one of its submodules."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name != skip_prefix and not name.startswith(skip_prefix + "."):
            file = frame.f_globals.get("__file__")
            return Caller(name, Path(file).resolve() if file else None)
        frame = frame.f_back
    return Caller("__main__", None)


def _editable_root(dist: metadata.Distribution) -> Path | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not data.get("dir_info", {}).get("editable"):
        return None
    url = urlparse(str(data.get("url", "")))
    return Path(unquote(url.path)).resolve() if url.scheme == "file" else None


def _owns(dist: metadata.Distribution, top: str, file: Path | None) -> bool:
    tops = (dist.read_text("top_level.txt") or "").split()
    if top in tops:
        return True
    for f in dist.files or ():
        parts = f.parts
        if parts and (parts[0] == top or parts[0] in (f"{top}.py",)):
            return True
    root = _editable_root(dist)
    return bool(root and file and file.is_relative_to(root))


@dataclass(frozen=True)
class FoundLock:
    """A lock found for a caller: its text and where it came from (for messages)."""

    text: str
    where: str
    project: Path | None = None
    """The project folder the lock belongs to, when it is read from a source tree."""


def lock_for_caller(caller: Caller) -> FoundLock | None:
    """The ``kernels.lock`` that belongs to ``caller``'s distribution (or source tree), if any."""
    top = caller.module.split(".")[0]
    for dist in metadata.distributions():
        text = dist.read_text(LOCK_NAME)
        if text is None or not _owns(dist, top, caller.file):
            continue
        name = dist.metadata["Name"] or "?"
        # An editable install runs the source tree: its kernels.lock is the live one, while the copy
        # in the dist-info is only as fresh as the last install.
        root = _editable_root(dist)
        if root is not None and (root / LOCK_NAME).is_file():
            live = root / LOCK_NAME
            return FoundLock(live.read_text(encoding="utf-8"), str(live), root)
        return FoundLock(text, f"{LOCK_NAME} of the installed distribution {name}")
    start = caller.file.parent if caller.file is not None else None
    if start is None and caller.module == "__main__":
        # `python -c` and the interactive prompt have no file: their project is the working folder.
        start = Path.cwd()
    if start is not None:
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file():
                lock = folder / LOCK_NAME
                if lock.is_file():
                    return FoundLock(lock.read_text(encoding="utf-8"), str(lock), folder)
                break
    return None
