#!/usr/bin/env python3
"""Build the example kernels into Hub-layout variant folders, and publish them to a Hub.

A kernel folder holds a ``kernel.toml`` (name, version, license, backends, sources), C++/CUDA
sources under ``csrc/`` (none for a pure-PyTorch kernel) and the Python package under
``torch-ext/<name>/``. :func:`build_variant` turns it into the folder the loader downloads::

    <cache>/<key>/build/<variant>/
        __init__.py, <other package modules>.py
        _ops.py                 generated: loads the library, ``ops = torch.ops.<id>``
        _version.py             generated: ``__version__``
        <id>.abi3.so            compiled operators (absent for torch-universal kernels)
        <name>/__init__.py      compat package for loaders that ``import <name>`` from sys.path
        _depends.py             generated when the kernel has kernel-depends: their repo ids
        metadata.json           name, id, version, license, python-depends, kernel-depends,
                                backend, digest

``<id>`` (``_activation_1a2b3c4``) is a module name unique to the sources, version and backend; it is
also the ``torch.ops`` namespace the library registers, so two versions of one kernel can live in one
process. Builds are cached under ``$KERNELS_BUILD_CACHE`` (default
``~/.cache/kernels-example-builds``) by a hash of everything that affects the output.

Command line (from the repository root)::

    python examples/kernels/build.py build activation [--backend cpu|cuda] [--version 0.1.0]
    python examples/kernels/build.py publish activation --endpoint URL [--repo-id ORG/NAME] ...
    python examples/kernels/build.py publish-examples --endpoint URL [--backend cpu ...]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the core depends on tomli for these interpreters
    import tomli as tomllib

__all__ = [
    "BuildError",
    "KernelSpec",
    "build_variant",
    "kernel_id",
    "load_spec",
    "main",
    "publish_examples",
    "publish_kernel",
    "repo_files",
    "variant_files",
]

log = logging.getLogger("kernels.examples.build")

EXAMPLES_DIR = Path(__file__).resolve().parent
CACHE_ENV = "KERNELS_BUILD_CACHE"
DEFAULT_CACHE = Path("~/.cache/kernels-example-builds")
BACKENDS = ("cpu", "cuda", "universal")
# Hopper (H100/H200) unless TORCH_CUDA_ARCH_LIST says otherwise; fixed rather than probed from the
# local GPU so that a build does not depend on the machine it ran on.
DEFAULT_CUDA_ARCHS = "9.0"
# Files the build writes into every variant; a kernel's own package may not ship them.
GENERATED_MODULES = ("_ops.py", "_version.py", "_depends.py")
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+!_-]*$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

EXAMPLE_ORG = "kernels-community"
EXAMPLE_KERNELS: dict[str, tuple[str, ...] | None] = {
    # kernel folder under examples/kernels (also the repo name) -> backends; None: the caller's
    "activation": None,
    "rmsnorm": ("universal",),
    # Depends on <org>/rmsnorm (kernel-depends), so it is published after it.
    "scaled-rmsnorm": ("universal",),
}


class BuildError(RuntimeError):
    """A kernel could not be built (bad ``kernel.toml``, unsupported backend, compiler error)."""


@dataclass(frozen=True)
class KernelSpec:
    """A kernel folder's ``kernel.toml``, validated."""

    directory: Path
    name: str
    version: str
    license: str
    backends: tuple[str, ...]
    python_depends: tuple[str, ...]
    kernel_depends: dict[str, dict[str, Any]]
    """``[kernel-depends]``: a name the package uses -> ``{"repo-id", "version" | "revision"}``."""
    sources: dict[str, tuple[str, ...]]
    """Source files relative to ``directory``: ``common`` ones for every backend, plus per backend."""

    @property
    def module_name(self) -> str:
        """The package name (``torch-ext/<module_name>``, the compat folder): dashes become ``_``."""
        return self.name.replace("-", "_")

    @property
    def universal(self) -> bool:
        """Whether the kernel is pure Python, built only as ``torch-universal``."""
        return self.backends == ("universal",)

    def sources_for(self, backend: str) -> list[Path]:
        """Absolute paths of the sources compiled for ``backend``."""
        rel = [*self.sources.get("common", ()), *self.sources.get(backend, ())]
        return [self.directory / r for r in rel]


def _str_list(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError(f"{what} must be a list of strings, got {value!r}")
    return tuple(value)


def _kernel_depends(value: object, where: str) -> dict[str, dict[str, Any]]:
    """Validate ``[kernel-depends]``: ``name = { repo-id = "org/name", version = N }`` entries."""
    if not isinstance(value, dict):
        raise BuildError(f"{where}: [kernel-depends] must be a table")
    out: dict[str, dict[str, Any]] = {}
    for name, dep in value.items():
        key = f"{where}: kernel-depends.{name}"
        if not isinstance(dep, dict) or not isinstance(dep.get("repo-id"), str):
            raise BuildError(f"{key} needs a repo-id string")
        if set(dep) - {"repo-id", "version", "revision"} or ("version" in dep) == (
            "revision" in dep
        ):
            raise BuildError(f"{key} needs repo-id and exactly one of version and revision")
        out[str(name)] = dict(dep)
    return out


def load_spec(kernel_dir: Path) -> KernelSpec:
    """Read and validate ``kernel_dir/kernel.toml``; raise :class:`BuildError` if it is wrong."""
    kernel_dir = Path(kernel_dir).resolve()
    toml_path = kernel_dir / "kernel.toml"
    try:
        data: dict[str, Any] = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{kernel_dir} is not a kernel folder: it has no kernel.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{toml_path}: {exc}") from None
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BuildError(f"{toml_path}: 'name' must be an identifier-like string, got {name!r}")
    version = data.get("version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise BuildError(f"{toml_path}: 'version' must be a version string, got {version!r}")
    backends = _str_list(data.get("backends", ["cpu"]), f"{toml_path}: 'backends'")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise BuildError(f"{toml_path}: 'backends' must name some of {BACKENDS}, got {backends}")
    if "universal" in backends and len(backends) > 1:
        raise BuildError(f"{toml_path}: a universal kernel has no other backend")
    raw_sources = data.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise BuildError(f"{toml_path}: [sources] must be a table")
    sources = {
        group: _str_list(files, f"{toml_path}: sources.{group}")
        for group, files in raw_sources.items()
    }
    spec = KernelSpec(
        directory=kernel_dir,
        name=name,
        version=version,
        license=str(data.get("license", "apache-2.0")),
        backends=backends,
        python_depends=_str_list(data.get("python-depends", []), f"{toml_path}: python-depends"),
        kernel_depends=_kernel_depends(data.get("kernel-depends", {}), f"{toml_path}"),
        sources=sources,
    )
    if spec.universal and sources:
        raise BuildError(f"{toml_path}: a universal kernel has no sources to compile")
    if not spec.universal and not spec.sources_for(backends[0]):
        raise BuildError(f"{toml_path}: [sources] lists nothing to compile")
    package = kernel_dir / "torch-ext" / spec.module_name
    if not (package / "__init__.py").is_file():
        raise BuildError(f"{kernel_dir}: no Python package at torch-ext/{spec.module_name}/")
    return spec


def _is_build_junk(path: Path) -> bool:
    """Byte-code caches and hidden files: never part of a kernel's sources or of a variant."""
    return any(p == "__pycache__" or p.startswith(".") for p in path.parts) or path.suffix == ".pyc"


def _tree_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` except byte-code caches and hidden files, sorted."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not _is_build_junk(p.relative_to(root))
    )


def variant_files(variant_dir: Path) -> list[str]:
    """The files of a built variant, as sorted POSIX paths relative to it.

    Byte-code caches are left out: importing a variant from its folder writes ``__pycache__`` there,
    and those files are neither published nor listed in the digest.
    """
    root = Path(variant_dir)
    return [p.relative_to(root).as_posix() for p in _tree_files(root)]


def _sources_digest(kernel_dir: Path) -> str:
    """sha256 over every file of the kernel folder (paths and contents)."""
    h = hashlib.sha256()
    for path in _tree_files(kernel_dir):
        data = path.read_bytes()
        # Lengths make the encoding unambiguous: no two trees hash the same bytes.
        rel = path.relative_to(kernel_dir).as_posix().encode()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _resolve_backend(spec: KernelSpec, backend: str) -> str:
    if spec.universal:
        # Pure Python: there is one build whatever backend the caller runs on.
        return "universal"
    if backend not in spec.backends:
        raise BuildError(
            f"kernel {spec.name!r} builds for {', '.join(spec.backends)}, not {backend!r}"
        )
    return backend


def _id_for(spec: KernelSpec, sources_digest: str, version: str, backend: str) -> str:
    h = hashlib.sha256(f"{sources_digest}\0{version}\0{backend}".encode()).hexdigest()
    return f"_{spec.module_name}_{h[:7]}"


def kernel_id(kernel_dir: Path, *, backend: str = "cpu", version: str | None = None) -> str:
    """The ``metadata.json`` id (and ``torch.ops`` namespace) that :func:`build_variant` gives.

    It is ``_<name>_<hash7>``, the hash being over the kernel folder's files, the version and the
    backend: each version (and each edit of the sources) gets its own module and op namespace.
    """
    spec = load_spec(kernel_dir)
    version = _check_version(version or spec.version)
    return _id_for(spec, _sources_digest(spec.directory), version, _resolve_backend(spec, backend))


def _check_version(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise BuildError(f"not a version string: {version!r}")
    return version


def _cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser().resolve()


def _torch_version() -> str:
    """torch's version from its distribution metadata: cheap (no torch import) and the same string
    whether or not torch is imported (``torch.__version__`` and the metadata can differ in the
    local tag, which would make one build two cache keys)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:  # torch on sys.path without metadata (a source checkout)
        import torch

        return str(torch.__version__)


def _cuda_archs() -> list[str]:
    raw = os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_CUDA_ARCHS
    return [a for a in re.split(r"[;\s]+", raw.strip()) if a]


def _variant_name(backend: str) -> str:
    from kernels.variants import build_variant_name

    return str(build_variant_name(backend))


def build_variant(
    kernel_dir: Path,
    *,
    backend: str = "cpu",
    version: str | None = None,
    verbose: bool = False,
    kernel_depends: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Build ``kernel_dir`` for ``backend`` and return the variant folder ``.../build/<variant>``.

    ``version`` defaults to ``kernel.toml``'s. The variant name is the running interpreter's (from
    ``kernels.variants.build_variant_name``); a universal kernel is always built as
    ``torch-universal``, whatever ``backend`` says. A ``cuda`` build needs a CUDA build of torch and
    targets ``$TORCH_CUDA_ARCH_LIST`` (default ``9.0``).

    The result is cached under ``$KERNELS_BUILD_CACHE`` by a hash of the kernel's files, the
    version, the backend, the variant, torch's and Python's versions, the CUDA archs and this
    script: a repeated call returns the same path in milliseconds. ``kernel_depends`` replaces
    entries of ``[kernel-depends]`` by name (to point them at other repos, as tests do). A folder that exists is complete
    (it is built elsewhere and renamed into place), and concurrent builders of one key wait on a
    file lock instead of racing. Do not modify the returned folder. Raises :class:`BuildError`.
    """
    spec = load_spec(kernel_dir)
    if kernel_depends:
        unknown = sorted(set(kernel_depends) - set(spec.kernel_depends))
        if unknown:
            raise BuildError(f"{spec.name} has no kernel-depends named {unknown}")
        spec = dataclasses.replace(spec, kernel_depends={**spec.kernel_depends, **kernel_depends})
    version = _check_version(version or spec.version)
    backend = _resolve_backend(spec, backend)
    variant = _variant_name(backend)
    if backend == "cuda" and not re.search(r"-cu\d+-", variant):
        raise BuildError(
            f"a cuda build needs a CUDA build of torch; this one is {_torch_version()} "
            f"(variant {variant})"
        )
    sources_digest = _sources_digest(spec.directory)
    if spec.kernel_depends:  # other dependencies make other code (_depends.py): another id
        deps = json.dumps(spec.kernel_depends, sort_keys=True)
        sources_digest = hashlib.sha256(f"{sources_digest}\0{deps}".encode()).hexdigest()
    kid = _id_for(spec, sources_digest, version, backend)
    archs = _cuda_archs() if backend == "cuda" else []
    key_material = {
        "sources": sources_digest,
        "version": version,
        "backend": backend,
        "variant": variant,
        "torch": _torch_version() if backend != "universal" else None,
        "python": sys.implementation.cache_tag if backend != "universal" else None,
        "cuda-archs": archs,
        "build-script": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    key_hash = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
    key = f"{spec.name}-{version}-{backend}-{key_hash[:16]}"
    cache = _cache_root()
    key_dir = cache / key
    final = key_dir / "build" / variant
    if (final / "metadata.json").is_file():
        log.info("cache hit: %s", final)
        return final

    from filelock import FileLock

    (cache / ".locks").mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / ".locks" / f"{key}.lock")):
        if (final / "metadata.json").is_file():  # another process built it while we waited
            return final
        if key_dir.exists():
            # Left by an interrupted rename or edited by hand: not trustworthy, build afresh.
            shutil.rmtree(key_dir)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=cache))
        try:
            _assemble(
                spec,
                staging / "build" / variant,
                kid=kid,
                version=version,
                backend=backend,
                archs=archs,
                scratch=cache,
                verbose=verbose,
            )
            # A rename is atomic on one filesystem: readers see no folder or a complete one.
            os.replace(staging, key_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("built %s in %.1f s: %s", kid, time.monotonic() - started, final)
    return final


def _assemble(
    spec: KernelSpec,
    out: Path,
    *,
    kid: str,
    version: str,
    backend: str,
    archs: list[str],
    scratch: Path,
    verbose: bool,
) -> None:
    """Write the complete variant folder ``out`` (which must not exist); compile in ``scratch``."""
    package = spec.directory / "torch-ext" / spec.module_name
    for generated in (*GENERATED_MODULES, f"{spec.module_name}/__init__.py"):
        if (package / generated).exists():
            raise BuildError(f"{package / generated} is generated by the build; remove it")
    out.mkdir(parents=True)
    for src in _tree_files(package):
        dst = out / src.relative_to(package)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)

    library: str | None = None
    if backend != "universal":
        library = f"{kid}.abi3.so"
        with tempfile.TemporaryDirectory(prefix=f".obj-{kid}-", dir=scratch) as objdir:
            built = _compile(
                spec, kid=kid, backend=backend, archs=archs, workdir=Path(objdir), verbose=verbose
            )
            shutil.copyfile(built, out / library)

    (out / "_ops.py").write_text(_ops_source(kid, library), encoding="utf-8")
    (out / "_version.py").write_text(
        f'"""Generated by build.py."""\n\n__version__ = {version!r}\n', encoding="utf-8"
    )
    if spec.kernel_depends:
        repo_ids = {name: dep["repo-id"] for name, dep in sorted(spec.kernel_depends.items())}
        (out / "_depends.py").write_text(
            '"""Generated by build.py: the repos of kernel-depends, by name (for get_kernel_dep)."""'
            f"\n\nREPO_IDS = {repo_ids!r}\n",
            encoding="utf-8",
        )
    compat = out / spec.module_name
    compat.mkdir()
    (compat / "__init__.py").write_text(_compat_source(kid, spec.module_name), encoding="utf-8")

    backend_meta: dict[str, Any] = {"type": backend}
    if backend == "cuda":
        backend_meta["archs"] = archs
    metadata = {
        "name": spec.name,
        "id": kid,
        "version": version,
        "license": spec.license,
        "python-depends": list(spec.python_depends),
        "kernel-depends": [dep for _, dep in sorted(spec.kernel_depends.items())],
        "backend": backend_meta,
        "digest": {
            "algorithm": "sha256",
            "files": {
                rel: base64.b64encode(hashlib.sha256((out / rel).read_bytes()).digest()).decode()
                for rel in variant_files(out)
            },
        },
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


# Runs in a child interpreter: torch.utils.cpp_extension.load(is_python_module=False) also loads
# the library into the process that builds it, which would register the op namespace there and
# make a later load of the variant's copy (same namespace) fail in that process.
_COMPILE_SCRIPT = """
import json, sys
from torch.utils.cpp_extension import load
load(is_python_module=False, **json.loads(sys.argv[1]))
"""


# Link the shared libstdc++ by name. torch's own libraries use it, and C++ objects (exceptions,
# strings, iostreams) cross between them and the kernel; a toolchain whose search path finds only
# libstdc++.a (seen: a g++ wrapper with -B to a private GCC folder) would otherwise link a second,
# private copy into the kernel, and formatting an error message then crashed the process.
_STDCXX_LDFLAGS = ["-l:libstdc++.so.6"] if sys.platform.startswith("linux") else []


def _compile(
    spec: KernelSpec, *, kid: str, backend: str, archs: list[str], workdir: Path, verbose: bool
) -> Path:
    """Compile the kernel's sources for ``backend`` into ``workdir/<kid>.so`` and return its path."""
    sources = spec.sources_for(backend)
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise BuildError(f"missing sources: {', '.join(missing)}")
    defines = [f"-DKERNEL_NAMESPACE={kid}"]
    if backend == "cuda":
        defines.append("-DKERNELS_CUDA")
    args = {
        "name": kid,
        "sources": [str(s) for s in sources],
        # -fopenmp: at::parallel_for is an inline OpenMP region; without it the loops run serially.
        "extra_cflags": ["-O3", "-fopenmp", *defines],
        "extra_cuda_cflags": ["-O3", *defines],
        "extra_ldflags": ["-fopenmp", *_STDCXX_LDFLAGS],
        "build_directory": str(workdir),
        "verbose": verbose,
    }
    env = dict(os.environ)
    if backend == "cuda":
        env["TORCH_CUDA_ARCH_LIST"] = ";".join(archs)
    cmd = [sys.executable, "-c", _COMPILE_SCRIPT, json.dumps(args)]
    log.info("compiling %s for %s (%d sources)", kid, backend, len(sources))
    output = ""
    if verbose:  # the compiler's output goes straight to the terminal
        returncode = subprocess.run(cmd, env=env, check=False).returncode
    else:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        returncode, output = proc.returncode, proc.stdout + proc.stderr
    built = workdir / f"{kid}.so"
    if returncode != 0 or not built.is_file():
        raise BuildError(
            f"compiling {spec.name} for {backend} failed (exit {returncode})"
            + (f":\n{output[-8000:]}" if output else "")
        )
    return built


def _ops_source(kid: str, library: str | None) -> str:
    """``_ops.py``: loads ``library`` (a file beside it; none for universal kernels)."""
    if library is None:
        load = ""
    else:
        load = f"""

_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), {library!r})


def _namespace_registered() -> bool:
    # Another copy of this very build (same id, so the same sources) may already be loaded from
    # another folder; torch refuses a second registration of one namespace.
    prefix = NAMESPACE + "::"
    names = getattr(torch._C, "_dispatch_get_all_op_names", lambda: [])()
    return any(name.startswith(prefix) for name in names)


if not _namespace_registered():
    torch.ops.load_library(_LIBRARY)
"""
    return f'''"""Generated by build.py: this variant's operators, ``torch.ops.{kid}``."""

from __future__ import annotations

import os

import torch

NAMESPACE = {kid!r}
{load}
ops = torch.ops.{kid}


def add_op_namespace_prefix(op_name: str) -> str:
    """Return ``op_name`` qualified with this build's namespace: ``{kid}::<op_name>``."""
    return f"{{NAMESPACE}}::{{op_name}}"
'''


def _compat_source(kid: str, module_name: str) -> str:
    return f'''"""Compatibility package: the kernel under its plain name, ``{module_name}``.

Loaders that import the variant under its id reach this as ``{kid}.{module_name}``; older ones put
the variant folder on ``sys.path`` and ``import {module_name}``. Either way it re-exports the parent
package, which it first imports under its id in the second case.
"""

import importlib
import importlib.util
import os
import sys


def _parent():
    if "." in __name__:
        return importlib.import_module(__name__.rpartition(".")[0])
    module = sys.modules.get({kid!r})
    if module is None:
        folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        spec = importlib.util.spec_from_file_location(
            {kid!r}, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[{kid!r}] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[{kid!r}]
            raise
    return module


_module = _parent()
_exported = ("__all__", "__version__")
globals().update(
    {{k: v for k, v in vars(_module).items() if not k.startswith("__") or k in _exported}}
)
del _module, _parent, _exported
'''


# --- publishing ---------------------------------------------------------------------------------


def _read_metadata(variant_dir: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((variant_dir / "metadata.json").read_text("utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{variant_dir} is not a built variant: no metadata.json") from None
    return meta


def _readme(
    repo_id: str, name: str, version: str, license: str, variants: list[str], branch: str | None
) -> str:
    m = re.fullmatch(r"v(\d+)", branch or "")
    how = f"version={m[1]}" if m else f"revision={branch or 'main'!r}"
    rows = "\n".join(f"- `{v}`" for v in variants)
    return f"""---
license: {license}
tags:
- kernels
---

# {name}

Version {version}, built by `examples/kernels/build.py` of the `kernels` repository.

```python
from kernels import get_kernel

{name.replace("-", "_")} = get_kernel("{repo_id}", {how})
```

Build variants:

{rows}
"""


def _hub_repo_type() -> str:
    """``kernel`` where the installed huggingface_hub can write kernel repos (2.x), else ``model``:
    1.x clients list kernel repos but refuse to commit to them. The loader finds either."""
    import huggingface_hub
    from packaging.version import Version

    return "kernel" if Version(huggingface_hub.__version__) >= Version("2") else "model"


def publish_kernel(
    endpoint: str,
    repo_id: str,
    variant_dirs: Sequence[Path],
    *,
    branch: str | None = "v1",
    tags: Sequence[str] = (),
    token: str | None = None,
    also_main: bool = True,
    extra_files: dict[str, Path] | None = None,
) -> str:
    """Upload built variants to the kernel repo ``repo_id`` on the Hub at ``endpoint``.

    ``extra_files`` (path in the repo -> local file) are committed too (benchmark scripts, say).

    Creates the repo (type ``kernel``) if needed, then makes one commit on ``main`` (when
    ``also_main``) that puts each variant folder at ``build/<variant>/`` (replacing that variant's
    old files, leaving other variants alone) plus a README.md. ``branch`` is then created at that
    commit, or, if it already exists, gets the same change as a commit of its own. Each tag is put
    on the commit the branch ends at; a tag that already exists elsewhere is moved there, so that
    republishing a version is repeatable. Returns the sha of the commit the branch and tags point
    to (``main``'s commit when ``branch`` is None).
    """
    _REPO_TYPE = _hub_repo_type()
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    dirs = [Path(d) for d in variant_dirs]
    if not dirs:
        raise ValueError("publish_kernel needs at least one variant folder")
    if not also_main and branch is None:
        raise ValueError("nothing to publish to: also_main is False and branch is None")
    metas = [_read_metadata(d) for d in dirs]
    names = {m["name"] for m in metas}
    if len(names) != 1:
        raise BuildError(f"variants of different kernels in one publish: {sorted(names)}")
    variants = [d.name for d in dirs]
    if len(set(variants)) != len(variants):
        raise BuildError(f"a variant is given twice: {variants}")
    name, version, license = metas[0]["name"], metas[0]["version"], metas[0]["license"]

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type=_REPO_TYPE, exist_ok=True)
    refs = api.list_repo_refs(repo_id, repo_type=_REPO_TYPE)
    branches = {b.name: b.target_commit for b in refs.branches}
    existing_tags = {t.name: t.target_commit for t in refs.tags}

    uploads = {f"build/{d.name}/{rel}": d / rel for d in dirs for rel in variant_files(d)}
    uploads.update(extra_files or {})

    def commit_to(revision: str) -> str:
        present = (
            api.list_repo_files(repo_id, repo_type=_REPO_TYPE, revision=revision)
            if revision in branches
            else []
        )
        # Files of a republished variant that the new build no longer has (an old id's library).
        stale = [
            p
            for p in present
            if any(p.startswith(f"build/{v}/") for v in variants) and p not in uploads
        ]
        all_variants = sorted(
            {p.split("/")[1] for p in present if p.startswith("build/") and p.count("/") >= 2}
            | set(variants)
        )
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationDelete(path_in_repo=p, is_folder=False) for p in stale
        ]
        operations += [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in uploads.items()
        ]
        readme = _readme(repo_id, name, version, license, all_variants, branch)
        operations.append(
            CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode())
        )
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=f"Publish {name} {version} ({', '.join(variants)})",
            repo_type=_REPO_TYPE,
            revision=revision,
        )
        log.info("%s@%s: commit %s", repo_id, revision, info.oid)
        return str(info.oid)

    if also_main:
        sha = commit_to("main")
        if branch is not None and branch != "main":
            if branch in branches:
                sha = commit_to(branch)
            else:
                api.create_branch(repo_id, branch=branch, revision=sha, repo_type=_REPO_TYPE)
    else:
        assert branch is not None
        if branch not in branches:
            api.create_branch(repo_id, branch=branch, repo_type=_REPO_TYPE)  # from main's head
            branches[branch] = ""
        sha = commit_to(branch)

    for tag in tags:
        if existing_tags.get(tag) == sha:
            continue
        if tag in existing_tags:
            api.delete_tag(repo_id, tag=tag, repo_type=_REPO_TYPE)
        api.create_tag(repo_id, tag=tag, revision=sha, repo_type=_REPO_TYPE)
    return sha


def publish_examples(
    endpoint: str,
    *,
    backends: Sequence[str] = ("cpu",),
    token: str | None = None,
    org: str = EXAMPLE_ORG,
) -> dict[str, str]:
    """Build and publish the example kernels to the Hub at ``endpoint``; return repo id -> commit.

    ``<org>/activation`` (``kernels-community/activation``) gets one variant per backend in
    ``backends`` (and its ``benchmarks/``), ``<org>/rmsnorm`` and ``<org>/scaled-rmsnorm`` (which
    depends on ``<org>/rmsnorm``) their ``torch-universal`` variant; each goes to ``main`` and
    to branch ``v1``, tagged ``v<version>`` (``v0.1.0``). Calling it again republishes the same
    builds (new commits; the branch and tags move along).
    """
    commits: dict[str, str] = {}
    for folder, fixed_backends in EXAMPLE_KERNELS.items():
        kernel_dir = EXAMPLES_DIR / folder
        spec = load_spec(kernel_dir)
        # Dependencies on kernels-community/<name> point at <org>/<name>, published just before.
        deps = {
            name: {**dep, "repo-id": f"{org}/{dep['repo-id'].split('/', 1)[1]}"}
            for name, dep in spec.kernel_depends.items()
            if dep["repo-id"].startswith(f"{EXAMPLE_ORG}/")
        }
        variant_dirs = [
            build_variant(kernel_dir, backend=b, kernel_depends=deps)
            for b in (fixed_backends or backends)
        ]
        repo_id = f"{org}/{spec.name}"
        commits[repo_id] = publish_kernel(
            endpoint,
            repo_id,
            variant_dirs,
            branch="v1",
            tags=(f"v{spec.version}",),
            token=token,
            extra_files=repo_files(kernel_dir),
        )
    return commits


def repo_files(kernel_dir: Path) -> dict[str, Path]:
    """Files of a kernel folder published beside ``build/``: its ``benchmarks/`` scripts (which
    ``kernels benchmark`` runs), by path in the repo."""
    bench = Path(kernel_dir) / "benchmarks"
    if not bench.is_dir():
        return {}
    return {f"benchmarks/{p.relative_to(bench).as_posix()}": p for p in _tree_files(bench)}


# --- command line -------------------------------------------------------------------------------


def _kernel_dir(arg: str) -> Path:
    path = Path(arg)
    if (path / "kernel.toml").is_file():
        return path
    if (EXAMPLES_DIR / arg / "kernel.toml").is_file():
        return EXAMPLES_DIR / arg
    known = sorted(p.parent.name for p in EXAMPLES_DIR.glob("*/kernel.toml"))
    raise BuildError(f"no kernel {arg!r}: give a folder with a kernel.toml, or one of {known}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py", description="Build and publish the example kernels."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show progress and compiler output"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build one variant and print its folder")
    build.add_argument("kernel", help="a kernel name under examples/kernels, or a kernel folder")
    build.add_argument("--backend", choices=BACKENDS, default="cpu")
    build.add_argument("--version", help="override kernel.toml's version")

    endpoint_default = os.environ.get("HF_ENDPOINT")
    publish = sub.add_parser("publish", help="build variants of one kernel and publish them")
    publish.add_argument("kernel", help="a kernel name under examples/kernels, or a kernel folder")
    publish.add_argument("--endpoint", default=endpoint_default, required=endpoint_default is None)
    publish.add_argument("--repo-id", help="default: kernels-community/<name>")
    publish.add_argument(
        "--backend", action="append", choices=BACKENDS, help="repeatable; default: cpu"
    )
    publish.add_argument("--version", help="override kernel.toml's version")
    publish.add_argument("--branch", default="v1")
    publish.add_argument("--tag", action="append", help="repeatable; default: v<version>")
    publish.add_argument("--no-main", action="store_true", help="do not commit to main")
    publish.add_argument("--token", default=None, help="default: huggingface_hub's (HF_TOKEN)")

    examples = sub.add_parser(
        "publish-examples", help="publish activation, rmsnorm and scaled-rmsnorm"
    )
    examples.add_argument("--endpoint", default=endpoint_default, required=endpoint_default is None)
    examples.add_argument(
        "--backend", action="append", choices=("cpu", "cuda"), help="repeatable; default: cpu"
    )
    examples.add_argument("--token", default=None)
    examples.add_argument("--org", default=EXAMPLE_ORG, help=f"default: {EXAMPLE_ORG}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        if args.command == "build":
            path = build_variant(
                _kernel_dir(args.kernel),
                backend=args.backend,
                version=args.version,
                verbose=args.verbose,
            )
            print(path)
        elif args.command == "publish":
            kernel_dir = _kernel_dir(args.kernel)
            spec = load_spec(kernel_dir)
            version = args.version or spec.version
            dirs = [
                build_variant(kernel_dir, backend=b, version=version, verbose=args.verbose)
                for b in dict.fromkeys(args.backend or ["cpu"])
            ]
            # A universal kernel gives the same folder for every backend asked.
            dirs = list(dict.fromkeys(dirs))
            sha = publish_kernel(
                args.endpoint,
                args.repo_id or f"{EXAMPLE_ORG}/{spec.name}",
                dirs,
                branch=args.branch,
                tags=args.tag or [f"v{version}"],
                token=args.token,
                also_main=not args.no_main,
                extra_files=repo_files(kernel_dir),
            )
            print(sha)
        else:
            commits = publish_examples(
                args.endpoint, backends=args.backend or ["cpu"], token=args.token, org=args.org
            )
            print(json.dumps(commits, indent=2))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
