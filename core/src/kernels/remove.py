"""``kernels remove``: take kernels out of ``[tool.kernels.dependencies]`` and out of ``kernels.lock``.

The package-manager adapters (``pdm kernels remove``, ``poetry kernels remove``) call
:func:`remove_dependencies` too. Nothing is resolved: the other locked entries stay exactly as they
are, so removing needs no network.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from kernels.errors import ConfigError
from kernels.fsutil import atomic_write
from kernels.lockfile import LOCK_NAME, Lock, read_lock


@dataclass(frozen=True)
class RemoveResult:
    """What :func:`remove_dependencies` changed."""

    removed: list[str]
    pyproject: Path
    lock: Path | None
    """The ``kernels.lock`` rewritten without the removed entries (``None``: none held them)."""


def _not_found(repo: str, have: list[str], pyproject: Path) -> ConfigError:
    close = difflib.get_close_matches(repo, have, n=1) or [
        h for h in have if h.lower() == repo.lower()
    ]
    hint = f"; did you mean {close[0]}?" if close else ""
    held = ", ".join(have) or "nothing"
    return ConfigError(
        f"{repo} is not in [tool.kernels.dependencies] of {pyproject} (it has: {held}){hint}"
    )


def without_dependencies(text: str, repos: list[str], *, pyproject: Path) -> str:
    """``text`` (a pyproject.toml) without the ``repos`` entries; every other byte kept.

    Raises :class:`~kernels.errors.ConfigError` naming the file when a repo is not a dependency.
    """
    doc = tomlkit.parse(text)
    # tomlkit's tables (and its proxy for a table split across the file) are dicts.
    tool = doc.get("tool")
    kernels_table = tool.get("kernels") if isinstance(tool, dict) else None
    deps = kernels_table.get("dependencies") if isinstance(kernels_table, dict) else None
    have = sorted(str(k) for k in deps) if isinstance(deps, dict) else []
    for repo in repos:
        if repo not in have:
            raise _not_found(repo, have, pyproject)
    assert isinstance(deps, dict)
    for repo in dict.fromkeys(repos):
        del deps[repo]
    return tomlkit.dumps(doc)


def remove_dependencies(project_dir: Path, repos: list[str]) -> RemoveResult:
    """Remove ``repos`` from the project's ``[tool.kernels.dependencies]`` and ``kernels.lock``.

    Both files are rewritten atomically; ``pyproject.toml`` keeps its comments and formatting. A
    repo that is not a dependency is a :class:`~kernels.errors.ConfigError` and nothing is written.
    """
    if not repos:
        raise ConfigError("name at least one kernel to remove (ORG/NAME)")
    pyproject = Path(project_dir) / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{pyproject}: no such file (is this a project folder?)") from None
    new_text = without_dependencies(text, repos, pyproject=pyproject)
    lock_path = Path(project_dir) / LOCK_NAME
    new_lock: Lock | None = None
    if lock_path.is_file():
        old = read_lock(lock_path)
        kept = {r: e for r, e in old.kernels.items() if r not in repos}
        if len(kept) != len(old.kernels):
            new_lock = Lock(kept, lock_path)
    # The lock first: should the second write fail, `kernels check` names the leftover entry.
    if new_lock is not None:
        new_lock.write(lock_path)
    atomic_write(pyproject, new_text)
    return RemoveResult(list(dict.fromkeys(repos)), pyproject, lock_path if new_lock else None)


def remove_command(project_dir: Path, repos: list[str]) -> int:
    """``kernels remove``: print what was removed; exit 0."""
    result = remove_dependencies(project_dir, repos)
    where = "[tool.kernels.dependencies]" + (f" and {result.lock}" if result.lock else "")
    for repo in result.removed:
        print(f"removed {repo} from {where}")
    return 0
