"""``kernels outdated``: what ``kernels lock --upgrade`` would change, kernel by kernel.

For every dependency the locked commit is compared with the newest commit that matches its spec on
the Hub (one request per dependency, in parallel, nothing written). Locked repos that are no longer
dependencies are listed too: the next ``kernels lock`` removes them.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kernels.config import Dependency, read_config
from kernels.errors import KernelsError
from kernels.lockfile import LOCK_NAME, read_lock

MAX_PARALLEL = 8


@dataclass(frozen=True)
class Outdated:
    """One kernel: its spec, what the lock pins, and the newest match on the Hub."""

    repo_id: str
    spec: str
    """The dependency as the messages write it (``version 1``), or ``""`` when not a dependency."""
    locked_ref: str | None
    locked_commit: str | None
    newest_ref: str | None
    newest_commit: str | None
    status: str
    """``up to date``, ``outdated``, ``not locked``, ``not a dependency`` or ``error``."""
    error: str | None = None


def _newest(dep: Dependency) -> tuple[str | None, str]:
    from kernels.resolve import resolve

    resolved = resolve(dep.request(), fresh=True)
    return resolved.ref, resolved.commit


def outdated(project_dir: Path) -> list[Outdated]:
    """Every dependency of the project (and every stray lock entry), sorted by repo id.

    Raises :class:`~kernels.errors.KernelsError` for a malformed ``pyproject.toml`` or lock; a
    dependency that cannot be resolved gets ``status="error"`` and the message.
    """
    config = read_config(project_dir)
    path = Path(project_dir) / LOCK_NAME
    lock = read_lock(path) if path.exists() else None
    locked = lock.kernels if lock else {}
    deps = list(config.dependencies.values())
    rows: list[Outdated] = []
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(deps)))) as pool:
        futures = {dep.repo_id: (dep, pool.submit(_newest, dep)) for dep in deps}
        for repo, (dep, fut) in futures.items():
            entry = locked.get(repo)
            old_ref, old_commit = (entry.ref, entry.commit) if entry else (None, None)
            try:
                ref, commit = fut.result()
            except KernelsError as err:
                rows.append(
                    Outdated(
                        repo, dep.describe(), old_ref, old_commit, None, None, "error", str(err)
                    )
                )
                continue
            if entry is None:
                status = "not locked"
            else:
                status = "up to date" if entry.commit == commit else "outdated"
            rows.append(Outdated(repo, dep.describe(), old_ref, old_commit, ref, commit, status))
    for repo in sorted(set(locked) - set(config.dependencies)):
        entry = locked[repo]
        rows.append(Outdated(repo, "", entry.ref, entry.commit, None, None, "not a dependency"))
    return sorted(rows, key=lambda r: r.repo_id)


def _pin(ref: str | None, commit: str | None) -> str:
    if commit is None:
        return "-"
    return f"{ref} ({commit[:12]})" if ref else commit[:12]


def outdated_command(project_dir: Path, *, as_json: bool) -> int:
    """Print :func:`outdated` as a table or JSON; exit 1 when a dependency could not be resolved."""
    from kernels.inspect import text_table

    rows = outdated(project_dir)
    failed = [r for r in rows if r.status == "error"]
    if as_json:
        doc: dict[str, Any] = {
            "lock": str(Path(project_dir) / LOCK_NAME),
            "kernels": [asdict(r) for r in rows],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
    elif not rows:
        print(f"{Path(project_dir) / 'pyproject.toml'} has no [tool.kernels.dependencies]")
    else:
        table = [
            [
                r.repo_id,
                r.spec or "-",
                _pin(r.locked_ref, r.locked_commit),
                _pin(r.newest_ref, r.newest_commit),
                r.status,
            ]
            for r in rows
        ]
        print(text_table(table, ["kernel", "spec", "locked", "newest", "status"]))
        if any(r.status in ("outdated", "not locked") for r in rows):
            from kernels_lockembed import tool_command

            upgrade = tool_command(project_dir, "lock --upgrade")
            print(f"run `{upgrade}` to move the lock to the newest matches")
    for r in failed:
        print(f"error: {r.repo_id}: {r.error}", file=sys.stderr)
    return 1 if failed else 0
