"""A build variant's ``metadata.json``, parsed: :class:`Metadata` and the small types it holds.

The attribute names are those of ``kernels`` 0.17.2's ``Metadata`` (``id``, ``name``, ``version``,
``kernels_minver``, ``license``, ``upstream``, ``source``, ``python_depends``, ``kernel_depends``,
``backend``, ``digest``, ``provenance``), so code reading ``LoadedKernel.metadata`` runs on both.
Parsing is lenient where 0.17.2 is strict without need: ``version`` may be a string (``"0.1.0"``,
which ``examples/kernels/build.py`` writes) and unknown keys are ignored; a key of the wrong type is
a :class:`~kernels.errors.KernelsError` naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from kernels.errors import KernelsError


class KernelName(str):
    """A kernel's name (``activation``, ``flash-attn``); ``python_name`` has ``_`` for ``-``."""

    @property
    def python_name(self) -> str:
        """The name as a Python identifier: dashes become underscores."""
        return self.replace("-", "_")


@dataclass(frozen=True)
class KernelDependency:
    """One entry of ``kernel-depends``: another kernel this one imports through ``get_kernel_dep``."""

    repo_id: str
    version: int | None = None
    """Branch ``v<version>``; exactly one of ``version`` and ``revision`` is set."""
    revision: str | None = None

    def spec(self) -> dict[str, Any]:
        """``{"version": N}`` or ``{"revision": R}``, as a lock entry records it."""
        return (
            {"revision": self.revision} if self.revision is not None else {"version": self.version}
        )

    def describe(self) -> str:
        """``org/name (version 1)`` or ``org/name (revision 'main')``."""
        if self.revision is not None:
            return f"{self.repo_id} (revision {self.revision!r})"
        return f"{self.repo_id} (version {self.version})"


@dataclass(frozen=True)
class BackendInfo:
    """``backend`` of the metadata: ``backend_type`` (``cuda``, ``rocm``, ``cpu`` ...) and ``archs``."""

    backend_type: str
    archs: list[str] | None = None
    """CUDA capabilities (``8.0``, ``9.0a``, ``10.0f``, ``12.0+PTX``) or ROCm targets (``gfx942``)."""


@dataclass(frozen=True)
class Digest:
    """``digest``: ``algorithm`` and each file's base64 digest, keyed by path in the variant."""

    algorithm: str
    files: dict[str, str]


@dataclass(frozen=True)
class GitStatus:
    """The git state of a source tree at build time."""

    commit: str
    dirty: bool


@dataclass(frozen=True)
class KernelBuilderVersion:
    """The kernel-builder that made the build, and its git state when known."""

    version: str
    git: GitStatus | None = None


@dataclass(frozen=True)
class Provenance:
    """Where a build came from: the builder, and the kernel's own source tree."""

    kernel_builder: KernelBuilderVersion
    kernel: GitStatus | None = None

    @property
    def dirty(self) -> bool:
        """True when the builder or the kernel source had uncommitted changes."""
        builder_dirty = self.kernel_builder.git is not None and self.kernel_builder.git.dirty
        return builder_dirty or (self.kernel is not None and self.kernel.dirty)


@dataclass(frozen=True)
class Metadata:
    """A build variant's ``metadata.json``; every key is optional except as noted."""

    id: str | None = None
    """A unique Python module name (also the ``torch.ops`` namespace)."""
    name: KernelName = field(default_factory=lambda: KernelName(""))
    version: int | str | None = None
    kernels_minver: Version | None = None
    license: str | None = None
    upstream: str | None = None
    source: str | None = None
    python_depends: list[str] = field(default_factory=list)
    kernel_depends: list[KernelDependency] = field(default_factory=list)
    backend: BackendInfo = field(default_factory=lambda: BackendInfo("unknown"))
    digest: Digest | None = None
    provenance: Provenance | None = None

    @staticmethod
    def read_from_file(metadata_path: str | Path) -> Metadata:
        """Parse the ``metadata.json`` at ``metadata_path``; raise ``KernelsError`` naming it."""
        path = Path(metadata_path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise KernelsError(f"cannot read {path}: {err}") from None
        return Metadata.from_bytes(raw, where=str(path))

    @staticmethod
    def from_bytes(data: bytes, *, where: str = "metadata.json") -> Metadata:
        """Parse ``metadata.json`` text; raise ``KernelsError`` naming ``where`` when it is invalid."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise KernelsError(f"{where} is not valid JSON: {err}") from None
        return Metadata.from_json(doc, where=where)

    @staticmethod
    def from_json(doc: object, *, where: str = "metadata.json") -> Metadata:
        """Build from a decoded ``metadata.json`` object; raise ``KernelsError`` on a bad key."""
        if not isinstance(doc, dict):
            raise KernelsError(f"{where} must hold a JSON object")
        p = _Parser(doc, where)
        backend = p.mapping("backend")
        archs = backend.get("archs")
        if archs is not None and not _is_str_list(archs):
            raise KernelsError(f"{where}: backend.archs must be a list of strings")
        return Metadata(
            id=p.text("id"),
            name=KernelName(p.text("name") or ""),
            version=p.version(),
            kernels_minver=p.minver(),
            license=p.text("license"),
            upstream=p.text("upstream"),
            source=p.text("source"),
            python_depends=p.str_list("python-depends"),
            kernel_depends=p.kernel_depends(),
            backend=BackendInfo(str(backend.get("type") or "unknown").lower(), archs),
            digest=p.digest(),
            provenance=p.provenance(),
        )


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class _Parser:
    """Typed access to one metadata document, with errors naming the file and key."""

    def __init__(self, doc: dict[str, Any], where: str) -> None:
        self.doc = doc
        self.where = where

    def fail(self, key: str, expected: str) -> KernelsError:
        return KernelsError(f"{self.where}: {key} must be {expected}, got {self.doc.get(key)!r}")

    def text(self, key: str) -> str | None:
        value = self.doc.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.doc.get(key, [])
        if not _is_str_list(value):
            raise self.fail(key, "a list of strings")
        return list(value)

    def version(self) -> int | str | None:
        value = self.doc.get("version")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
            raise self.fail("version", "an integer or a string")
        return value

    def minver(self) -> Version | None:
        value = self.text("kernels-minver")
        if value is None:
            return None
        try:
            return Version(value)
        except InvalidVersion:
            raise self.fail("kernels-minver", "a version such as '0.18.0'") from None

    def kernel_depends(self) -> list[KernelDependency]:
        value = self.doc.get("kernel-depends", [])
        if not isinstance(value, list):
            raise self.fail("kernel-depends", "a list")
        out = []
        for i, entry in enumerate(value):
            key = f"kernel-depends[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("repo-id"), str):
                raise KernelsError(f"{self.where}: {key} needs a 'repo-id' string")
            version, revision = entry.get("version"), entry.get("revision")
            if (version is None) == (revision is None):
                raise KernelsError(f"{self.where}: {key} needs exactly one of version and revision")
            if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
                raise KernelsError(f"{self.where}: {key} version must be an integer (branch vN)")
            if revision is not None and not isinstance(revision, str):
                raise KernelsError(f"{self.where}: {key} revision must be a string")
            out.append(KernelDependency(entry["repo-id"], version, revision))
        return out

    def digest(self) -> Digest | None:
        value = self.doc.get("digest")
        if value is None:
            return None
        files = value.get("files") if isinstance(value, dict) else None
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise self.fail("digest", "an object with 'algorithm' and 'files'")
        return Digest(str(value.get("algorithm", "sha256")), dict(files))

    def provenance(self) -> Provenance | None:
        value = self.doc.get("provenance")
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("kernel-builder"), dict):
            raise self.fail("provenance", "an object with 'kernel-builder'")
        builder = value["kernel-builder"]
        return Provenance(
            KernelBuilderVersion(str(builder.get("version", "")), _git(builder)),
            _git(value.get("kernel")),
        )


def _git(value: object) -> GitStatus | None:
    if not isinstance(value, dict) or ("commit" not in value and "sha" not in value):
        return None
    return GitStatus(str(value.get("commit", value.get("sha"))), bool(value.get("dirty", False)))


def read_variant_metadata(folder: Path) -> Metadata:
    """The metadata of the variant in ``folder``; an empty :class:`Metadata` when it has none."""
    path = folder / "metadata.json"
    if not path.is_file():
        return Metadata()
    return Metadata.read_from_file(path)
