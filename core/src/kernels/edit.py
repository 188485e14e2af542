"""``kernels add``: parse ``ORG/NAME[@SPEC]`` and write it into ``pyproject.toml`` with tomlkit.

The package-manager adapters (``pdm kernels add``, ``poetry kernels add``) call this module too.

tomlkit keeps the rest of the file byte for byte (comments, order, quoting), which a plain TOML
round trip would not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable, Table

Value = int | str | dict[str, str]


def parse_requirement(
    text: str, *, revision: str | None = None, command: str = "kernels add"
) -> tuple[str, Value | None]:
    """Split ``ORG/NAME[@SPEC]`` into the repo and its ``[tool.kernels.dependencies]`` value.

    ``SPEC`` is ``N`` (branch ``vN``; written as an int) or a PEP 440 specifier or bare version
    (tag ``v<version>``; written as a string). ``revision``
    (``--revision``: a branch, tag or commit) gives ``{ revision = "..." }`` instead. No ``SPEC``
    gives ``None``: :func:`default_spec` picks one. Raises ``ConfigError`` for an invalid value.
    """
    from kernels.config import parse_dependency
    from kernels.errors import ConfigError

    repo, sep, spec = text.strip().partition("@")
    spec = spec.strip()
    value: Value | None = None
    if sep and not spec:
        raise ConfigError(f"{text!r}: nothing after '@'; expected ORG/NAME@SPEC")
    if revision is not None:
        if sep:
            raise ConfigError(f"{text!r}: give either @SPEC or --revision, not both")
        value = {"revision": revision}
    elif sep:
        value = int(spec) if spec.isdigit() else spec
    where = f"`{command} {text}`"
    try:
        parse_dependency(repo, 0 if value is None else value, where=where)
    except ConfigError as err:
        if isinstance(value, str):
            raise ConfigError(f"{err}; for a branch, tag or commit use --revision {spec}") from None
        raise
    return repo, value


def default_spec(repo: str, *, command: str = "kernels add") -> Value:
    """The spec ``kernels add ORG/NAME`` writes: the newest ``vN`` branch, else ``>=`` the
    newest ``v<version>`` tag (one Hub request). Raises ``ResolutionError`` when there is neither."""
    from kernels.errors import ResolutionError
    from kernels.inspect import versions

    data = versions(repo)
    if data["branches"]:
        return int(data["branches"][-1]["version"])
    if data["versions"]:
        return f">={data['versions'][0]['version']}"
    raise ResolutionError(
        f"{repo} has no vN branches or v<version> tags; name what to lock: "
        f"`{command} {repo} --revision <branch|tag|commit>`"
    )


def describe(value: Value) -> str:
    """Human form of a dependency value, as the core's messages write it."""
    if isinstance(value, dict):
        return f"revision {value['revision']!r}"
    return f"version {value!r}"


def _table(parent: Any, key: str) -> Any:
    child = parent.get(key)
    if child is None:
        child = tomlkit.table(is_super_table=True)
        parent[key] = child
    elif not isinstance(child, (Table, InlineTable, dict)):
        raise TypeError(key)
    return child


def set_dependencies(text: str, entries: list[tuple[str, Value]]) -> str:
    """``text`` (a pyproject.toml) with ``[tool.kernels.dependencies]`` entries set; rest kept."""
    from kernels.errors import ConfigError

    doc = tomlkit.parse(text)
    try:
        kernels_table = _table(_table(doc, "tool"), "kernels")
    except TypeError as err:
        raise ConfigError(f"pyproject.toml: `{err}` is not a table") from None
    deps = kernels_table.get("dependencies")
    created = deps is None
    if deps is None:
        deps = tomlkit.table()
        kernels_table["dependencies"] = deps
    elif not isinstance(deps, (Table, InlineTable)):
        raise ConfigError("pyproject.toml: [tool.kernels.dependencies] is not a table")
    for repo, value in entries:
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            deps[repo] = inline
        else:
            deps[repo] = value
    if created:
        # tomlkit may place the new table before a later one: keep a blank line between them.
        deps.add(tomlkit.nl())
    out = tomlkit.dumps(doc)
    return out.rstrip("\n") + "\n" if text.endswith("\n") else out


def add_dependencies(
    pyproject: Path, requested: list[tuple[str, Value | None]], *, command: str = "kernels add"
) -> list[tuple[str, Value]]:
    """Write the requested dependencies into ``pyproject`` (specs picked where missing).

    The file is replaced atomically, keeping its mode; on any failure it is left as it was.
    """
    from kernels.config import read_pyproject_text
    from kernels.fsutil import atomic_write

    text = read_pyproject_text(pyproject)
    entries = [
        (repo, default_spec(repo, command=command) if v is None else v) for repo, v in requested
    ]
    # Atomic: a full disk or a read-only folder leaves the file byte for byte as it was.
    atomic_write(pyproject, set_dependencies(text, entries))
    return entries


def add_command(project_dir: Path, requirements: list[str], *, revision: str | None) -> int:
    """``kernels add``: add kernels to ``[tool.kernels.dependencies]`` and lock them.

    Nothing is kept when locking fails: ``pyproject.toml`` is put back as it was.
    """
    from kernels.config import read_pyproject_text
    from kernels.fsutil import atomic_write
    from kernels.project import lock_project

    pyproject = Path(project_dir) / "pyproject.toml"
    requested = [parse_requirement(r, revision=revision) for r in requirements]
    before = read_pyproject_text(pyproject)
    entries = add_dependencies(pyproject, requested)
    try:
        result = lock_project(project_dir)
    except BaseException:
        atomic_write(pyproject, before)
        raise
    for repo, value in entries:
        print(f"added {repo} ({describe(value)}) to [tool.kernels.dependencies]")
    print(f"locked {len(result.lock.kernels)} kernel(s) in {result.path}")
    return 0
