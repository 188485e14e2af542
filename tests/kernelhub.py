"""Test helpers: build the example kernels once, publish them to the session's local Hub."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import build as example_build  # examples/kernels/build.py (conftest puts it on sys.path)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "kernels"


def unique_repo(prefix: str = "test") -> str:
    """A repo id no other test uses."""
    return f"kernels-test/{prefix}-{uuid.uuid4().hex[:10]}"


def cpu_activation(version: str | None = None) -> Path:
    """The CPU build variant folder of the activation example (cached by source hash)."""
    return example_build.build_variant(EXAMPLES / "activation", backend="cpu", version=version)


def universal_rmsnorm(version: str | None = None, src: Path | None = None) -> Path:
    """The torch-universal variant folder of the rmsnorm example (or of a modified copy ``src``)."""
    return example_build.build_variant(
        src or EXAMPLES / "rmsnorm", backend="universal", version=version
    )


def renamed(variant_dir: Path, names: Sequence[str], tmp: Path) -> list[Path]:
    """Copies of a variant folder under other variant names (to fake a many-variant repo)."""
    out = []
    for name in names:
        dest = tmp / uuid.uuid4().hex[:8] / name
        shutil.copytree(variant_dir, dest, symlinks=False)
        out.append(dest)
    return out


def publish(
    endpoint: str,
    repo_id: str,
    variant_dirs: Sequence[Path],
    *,
    branch: str = "v1",
    tags: Sequence[str] = (),
    also_main: bool = True,
) -> str:
    """Publish variant folders as ``build/<name>/`` of ``repo_id``; returns the commit."""
    return example_build.publish_kernel(
        endpoint, repo_id, list(variant_dirs), branch=branch, tags=tags, also_main=also_main
    )


def with_metadata(
    variant_dir: Path, tmp: Path, folder: str | None = None, **changes: object
) -> Path:
    """A copy of a variant folder (named ``folder``, default its own) whose ``metadata.json`` has
    ``changes`` (keyword ``python_depends`` is the key ``python-depends``; ``None`` removes a key)."""
    import json

    dest = tmp / uuid.uuid4().hex[:8] / (folder or variant_dir.name)
    shutil.copytree(variant_dir, dest, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    meta = json.loads((dest / "metadata.json").read_text())
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (dest / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dest


def scaled_rmsnorm(rmsnorm_repo: str, version: str | None = None) -> Path:
    """The torch-universal variant of the scaled-rmsnorm example, depending on ``rmsnorm_repo`` v1."""
    return example_build.build_variant(
        EXAMPLES / "scaled-rmsnorm",
        backend="universal",
        version=version,
        kernel_depends={"rmsnorm": {"repo-id": rmsnorm_repo, "version": 1}},
    )
