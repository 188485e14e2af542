"""Reading ``[tool.kernels]`` from a ``pyproject.toml``.

Accepted dependency forms, per ``"org/name"`` key of ``[tool.kernels.dependencies]``:
``1`` (branch ``v1``), ``">=0.1,<0.2"`` (PEP 440 specifier over ``v<version>`` tags), or a table with
exactly one of ``version`` (int or specifier) and ``revision`` (branch, tag or commit). Anything else
is a :class:`~kernels.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernels.errors import ConfigError, KernelsError
from kernels.fsutil import describe_os_error
from kernels.hub import validate_repo_id, validate_revision
from kernels.resolve import Request, make_request, parse_specifier

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ACCEPTED_FORMS = (
    "an int N (branch vN), a version specifier string such as '>=0.1,<0.2', "
    "or a table { version = ... } or { revision = ... }"
)
KNOWN_KEYS = {"dependencies", "missing-lock", "trust-remote-code"}


@dataclass(frozen=True)
class Dependency:
    """One entry of ``[tool.kernels.dependencies]``; exactly one of ``version`` and ``revision``."""

    repo_id: str
    version: int | str | None = None
    revision: str | None = None

    def spec_json(self) -> dict[str, Any]:
        """The requested spec as written to the lock (``{"version": ...}`` or ``{"revision": ...}``)."""
        return {"version": self.version} if self.revision is None else {"revision": self.revision}

    def request(self) -> Request:
        """The resolver request for this dependency."""
        return make_request(self.repo_id, revision=self.revision, version=self.version)

    def describe(self) -> str:
        """Human form of the spec, e.g. ``version 1`` or ``revision 'main'``."""
        if self.revision is not None:
            return f"revision {self.revision!r}"
        return f"version {self.version!r}"


@dataclass(frozen=True)
class KernelsConfig:
    """``[tool.kernels]`` of one project."""

    path: Path
    """The ``pyproject.toml`` it came from."""
    dependencies: dict[str, Dependency]
    missing_lock: str = "error"
    """What build hooks do when ``kernels.lock`` is missing: ``error`` or ``warn``."""
    trust_remote_code: bool | list[str] = False
    """Repos ``kernels lock`` may lock although their publisher is not trusted (``True``: all)."""


def read_pyproject_text(path: Path) -> str:
    """The text of a ``pyproject.toml``; ``ConfigError`` naming the file when it is missing, a
    folder, unreadable or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")  # bytes: line endings are kept as they are
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (is this a project folder?)") from None
    except NotADirectoryError:
        raise ConfigError(
            f"{path.parent} is a file, not a folder; give the project folder that holds "
            "pyproject.toml"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; it must be the project's TOML file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8 (TOML requires it)"
        ) from None
    except OSError as err:
        raise ConfigError(describe_os_error(err, path)) from None


def load_pyproject(path: Path) -> dict[str, Any]:
    """Parse a ``pyproject.toml``; raise ``ConfigError`` naming the file on bad TOML (or see
    :func:`read_pyproject_text`)."""
    text = read_pyproject_text(path)
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return data


def parse_dependency(repo_id: str, value: object, *, where: str) -> Dependency:
    """Validate one dependency entry; ``where`` names the file and table for error messages."""
    key = f"{where} key {repo_id!r}"
    try:
        validate_repo_id(repo_id)
    except KernelsError as err:
        raise ConfigError(f"{key}: {err}") from None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"version", "revision"})
        if unknown:
            raise ConfigError(
                f"{key}: unknown field(s) {', '.join(unknown)}; expected {ACCEPTED_FORMS}"
            )
        if ("version" in value) == ("revision" in value):
            raise ConfigError(f"{key}: give exactly one of version and revision")
        if "revision" in value:
            rev = value["revision"]
            try:
                validate_revision(rev)
            except KernelsError as err:
                raise ConfigError(f"{key}: {err}") from None
            return Dependency(repo_id, revision=rev)
        value = value["version"]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{key}: got {value!r}; expected {ACCEPTED_FORMS}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key}: version must be >= 0, got {value}")
        return Dependency(repo_id, version=value)
    try:
        parse_specifier(value, where=key)
    except KernelsError as err:
        raise ConfigError(str(err)) from None
    return Dependency(repo_id, version=value.strip())


def read_config(project_dir: Path) -> KernelsConfig:
    """Read and validate ``[tool.kernels]`` of ``project_dir/pyproject.toml``.

    A project without the table has no dependencies. Errors name the file and key.
    """
    path = Path(project_dir) / "pyproject.toml"
    data = load_pyproject(path)
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(
            f"{path}: `tool` must be a table ([tool.kernels] and the like), got {tool!r}"
        )
    table = tool.get("kernels", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.kernels] must be a table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.kernels]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    deps_table = table.get("dependencies", {})
    if not isinstance(deps_table, dict):
        raise ConfigError(
            f"{path}: [tool.kernels.dependencies] must be a table of 'org/name' = spec"
        )
    where = f"{path} [tool.kernels.dependencies]"
    deps = {repo: parse_dependency(repo, v, where=where) for repo, v in deps_table.items()}
    missing = table.get("missing-lock", "error")
    if missing not in ("error", "warn"):
        raise ConfigError(
            f"{path}: [tool.kernels] missing-lock must be 'error' or 'warn', got {missing!r}"
        )
    trust = table.get("trust-remote-code", False)
    if not isinstance(trust, bool) and not (
        isinstance(trust, list) and all(isinstance(t, str) for t in trust)
    ):
        raise ConfigError(
            f"{path}: [tool.kernels] trust-remote-code must be true, false or a list of "
            f"'org/name' repo ids, got {trust!r}"
        )
    return KernelsConfig(
        path=path,
        dependencies=dict(sorted(deps.items())),
        missing_lock=missing,
        trust_remote_code=trust,
    )
