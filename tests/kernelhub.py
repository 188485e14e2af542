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


COUNTING_LAYERS = '''"""A copy of the rmsnorm example whose layers count their calls (for tests)."""

from __future__ import annotations

import torch
from torch import nn

CALLS = {"inference": 0, "training": 0}


def _rms(module: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    input_dtype = hidden_states.dtype
    hidden_states = hidden_states.to(torch.float32)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    hidden_states = hidden_states * torch.rsqrt(variance + module.variance_epsilon)
    return module.weight * hidden_states.to(input_dtype)


class RMSNorm(nn.Module):
    can_torch_compile = True
    has_backward = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        CALLS["inference"] += 1
        return _rms(self, hidden_states)


class RMSNormTraining(nn.Module):
    has_backward = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        CALLS["training"] += 1
        return _rms(self, hidden_states)
'''


def counting_rmsnorm(tmp: Path, version: str = "0.1.0") -> Path:
    """The torch-universal variant of a copy of rmsnorm whose layers ``RMSNorm`` (inference) and
    ``RMSNormTraining`` count their calls in ``layers.CALLS``."""
    src = tmp / "rmsnorm"
    if not src.exists():
        shutil.copytree(EXAMPLES / "rmsnorm", src)
        (src / "torch-ext" / "rmsnorm" / "layers.py").write_text(COUNTING_LAYERS)
    return universal_rmsnorm(version, src=src)
