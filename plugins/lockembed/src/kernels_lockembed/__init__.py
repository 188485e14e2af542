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
import os
import sys
from collections.abc import Callable, Iterable, Mapping
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


def project_tool(root: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The tool that manages the project at ``root``: ``hatch``, ``uv``, ``pdm``, ``poetry`` or None.

    The tool running now wins (Hatch and uv say so in the environment of what they start, ``pdm
    run`` too); otherwise the project's own files tell (a lock file or a ``[tool.<name>]`` table).
    """
    env = os.environ if environ is None else environ
    if env.get("HATCH_ENV_ACTIVE"):
        return "hatch"
    if env.get("UV"):
        return "uv"
    if env.get("PDM_PROJECT_ROOT") or "pdm-build-env" in env.get("PYTHONPATH", ""):
        return "pdm"
    root = Path(root)
    try:
        tool = _load_toml(root / "pyproject.toml").get("tool", {})
    except (OSError, ValueError):
        tool = {}
    for name in ("pdm", "poetry", "uv"):
        if (root / f"{name}.lock").is_file() or name in tool:
            return name
    if "envs" in tool.get("hatch", {}):
        return "hatch"
    return None


def tool_command(root: Path, action: str, environ: Mapping[str, str] | None = None) -> str:
    """The command that runs ``kernels <action>`` (``lock``, ``download --all-variants``, ...) for
    the project at ``root`` with the tool that manages it (:func:`project_tool`), else ``kernels``.

    A uv or Hatch project cannot be installed before its first lock (its build needs the lock): the
    uv command then syncs without the project, and Hatch uses the guide's ``kernels`` environment.
    """
    tool = project_tool(root, environ)
    name, _, rest = action.partition(" ")
    if tool == "uv":
        if name == "lock" and not (Path(root) / LOCK_NAME).is_file():
            return f"uv sync --no-install-project && uv run --no-sync kernels {action}"
        return f"uv run kernels {action}"
    if tool == "hatch":
        try:
            scripts = _load_toml(Path(root) / "pyproject.toml")["tool"]["hatch"]["envs"]["kernels"][
                "scripts"
            ]
        except (OSError, ValueError, KeyError, TypeError):
            scripts = {}
        if isinstance(scripts, dict) and name in scripts:
            return f"hatch run kernels:{action}"
        return f"hatch run kernels {action}"
    if tool in ("pdm", "poetry"):
        return f"{tool} kernels {action}"
    return f"kernels {name} {root}{' ' + rest if rest else ''}"


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
            f"run `{tool_command(root, 'lock')}` and commit kernels.lock"
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
            f"{lock} is not valid JSON ({err}); run `{tool_command(root, 'lock')}`"
        ) from None
    if not isinstance(doc, (dict, list)):
        raise LockEmbedError(
            f"{lock} is not a kernels lock file; run `{tool_command(root, 'lock')}`"
        )
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
