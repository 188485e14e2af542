"""Embedding ``kernels.lock`` in built or installed package metadata. Standard library only.

Build hooks run in isolated build environments where the ``kernels`` found on an index may be another
release, so they must not import that library. This distribution (``kernels-lockembed``) is what they
share instead: the core, every build hook and the plugins depend on it, and it imports nothing but
the standard library. Keep it that way.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

LOCK_NAME = "kernels.lock"


class LockEmbedError(Exception):
    """The project declares kernel dependencies but its lock is missing or malformed."""


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(path, "rb") as f:
        data: dict[str, Any] = tomllib.load(f)
        return data


def lock_text_for_build(root: Path, *, warn: Callable[[str], None] | None = None) -> str | None:
    """The ``kernels.lock`` text a build of the project at ``root`` must embed, or ``None``.

    ``None`` when the project has no ``[tool.kernels.dependencies]``, or when its lock is missing and
    ``[tool.kernels] missing-lock = "warn"`` (``warn`` is then called with the message). Raises
    :class:`LockEmbedError` when the lock is missing (default policy) or is not valid JSON.
    """
    pyproject = Path(root) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    table = _load_toml(pyproject).get("tool", {}).get("kernels", {})
    if not isinstance(table, dict) or not table.get("dependencies"):
        return None
    lock = Path(root) / LOCK_NAME
    if not lock.is_file():
        msg = (
            f"{pyproject} has [tool.kernels.dependencies] but {lock} is missing; "
            f"run `kernels lock {root}` and commit kernels.lock"
        )
        if table.get("missing-lock", "error") == "warn":
            (warn or (lambda m: print(f"warning: {m}", file=sys.stderr)))(msg)
            return None
        raise LockEmbedError(msg)
    text = lock.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise LockEmbedError(
            f"{lock} is not valid JSON ({err}); run `kernels lock {root}`"
        ) from None
    if not isinstance(doc, (dict, list)):
        raise LockEmbedError(f"{lock} is not a kernels lock file; run `kernels lock {root}`")
    return text


def _record_row(dist_info: Path, name: str) -> list[str]:
    data = (dist_info / name).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [f"{dist_info.name}/{name}", f"sha256={digest}", str(len(data))]


def add_to_dist_info(dist_info: Path, lock_text: str, top_level: Iterable[str] = ()) -> None:
    """Put ``kernels.lock`` (and ``top_level.txt`` if missing) into an installed dist-info.

    For installers that write the project's metadata themselves (``poetry install``): the files are
    added to RECORD so that uninstalling removes them.
    """
    dist_info = Path(dist_info)
    added = [LOCK_NAME]
    (dist_info / LOCK_NAME).write_text(lock_text, encoding="utf-8")
    tops = sorted(set(top_level))
    if tops and not (dist_info / "top_level.txt").exists():
        (dist_info / "top_level.txt").write_text("\n".join(tops) + "\n", encoding="utf-8")
        added.append("top_level.txt")
    record = dist_info / "RECORD"
    rows = (
        list(csv.reader(io.StringIO(record.read_text(encoding="utf-8")))) if record.exists() else []
    )
    names = {f"{dist_info.name}/{n}" for n in added}
    rows = [r for r in rows if r and r[0] not in names]
    rows.extend(_record_row(dist_info, n) for n in added)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    record.write_text(out.getvalue(), encoding="utf-8")
