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


def load_pyproject(path: Path) -> dict[str, Any]:
    """Parse a ``pyproject.toml``; raise ``ConfigError`` naming the file on bad TOML."""
    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
            return data
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (is this a project folder?)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


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
    table = data.get("tool", {}).get("kernels", {})
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
