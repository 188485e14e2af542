"""transformers from PyPI, unmodified, kernelizing a tiny Llama with our layers from the local Hub.

The model is built from a config (no weights to download) on the CPU. transformers' own
``use_kernels`` path runs: it registers its built-in mapping, then calls ``kernelize`` with
``KernelizeFallback.ALL``; ``model.train()`` re-kernelizes for training.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from kernelhub import (
    counting_rmsnorm,
    cpu_activation,
    publish,
    renamed,
    unique_repo,
    universal_rmsnorm,
)
from kernels import LayerRepository, Mode, register_kernel_mapping, use_kernel_mapping

transformers = pytest.importorskip("transformers")


def tiny_llama() -> Any:
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def norms(model: Any) -> list[Any]:
    return [m for m in model.modules() if type(m).__name__ == "LlamaRMSNorm"]


@pytest.fixture(scope="module")
def repos(hub: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("tf-repos")
    counting = unique_repo("counting-rmsnorm")
    publish(hub.endpoint, counting, [counting_rmsnorm(tmp)], branch="v1")
    norm = unique_repo("rmsnorm")
    publish(hub.endpoint, norm, [universal_rmsnorm("0.1.0")], branch="v1")
    act = unique_repo("activation")
    publish(hub.endpoint, act, [cpu_activation("0.1.0")], branch="v1")
    return {"counting": counting, "norm": norm, "act": act}


def test_transformers_sees_kernels_available() -> None:
    from transformers.utils.import_utils import is_kernels_available

    assert is_kernels_available()  # its gate: 0.18.2 <= version < 0.19


def test_use_kernels_runs_the_hub_layer_and_retrains(repos: dict[str, str]) -> None:
    model = tiny_llama()
    ids = torch.randint(0, 128, (2, 12))
    with torch.no_grad():
        ref = model(ids).logits
    counting = repos["counting"]
    register_kernel_mapping(
        {
            "RMSNorm": {
                "cpu": {
                    Mode.INFERENCE: LayerRepository(counting, layer_name="RMSNorm", version=1),
                    Mode.TRAINING: LayerRepository(
                        counting, layer_name="RMSNormTraining", version=1
                    ),
                }
            }
        }
    )
    model.use_kernels = True  # transformers registers its mapping and kernelizes
    assert all("forward" in m.__dict__ for m in norms(model))
    layers = sys.modules[norms(model)[0].forward.__func__.__module__]
    calls = layers.CALLS
    before = dict(calls)
    with torch.no_grad():
        out = model(ids).logits
    torch.testing.assert_close(out, ref)
    assert calls["inference"] - before["inference"] == len(norms(model))  # 2 per layer + final

    model.train()  # transformers re-kernelizes for Mode.TRAINING
    before = dict(calls)
    loss = model(ids, labels=ids).loss
    loss.backward()
    assert calls["training"] - before["training"] == len(norms(model))
    assert calls["inference"] == before["inference"]
    assert all(m.weight.grad is not None for m in norms(model))


def test_kernel_config_and_torch_compile(repos: dict[str, str]) -> None:
    """The CPU is not a device KernelConfig accepts, so the mapping comes in through
    use_kernel_mapping, as KernelConfig's own path does for a GPU."""
    model = tiny_llama()
    ids = torch.randint(0, 128, (2, 12))
    with torch.no_grad():
        ref = model(ids, use_cache=False).logits
    mapping = {
        "RMSNorm": {"cpu": LayerRepository(repos["norm"], layer_name="RMSNorm", version=1)},
        "SiLU": {"cpu": LayerRepository(repos["act"], layer_name="Silu", version=1)},
    }
    from transformers.integrations.hub_kernels import kernelize as tf_kernelize

    with use_kernel_mapping(mapping):
        tf_kernelize(model, mode=Mode.INFERENCE | Mode.TORCH_COMPILE)
    silus = [m for m in model.modules() if type(m).__name__ == "SiLUActivation"]
    assert silus and all("forward" in m.__dict__ for m in silus + norms(model))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        out = compiled(ids, use_cache=False).logits
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_unloadable_kernels_keep_transformers_working(hub: Any) -> None:
    """transformers passes KernelizeFallback.ALL: a missing repository keeps the original layer."""
    model = tiny_llama()
    ids = torch.randint(0, 128, (1, 8))
    with torch.no_grad():
        ref = model(ids).logits
    with use_kernel_mapping(
        {
            "RMSNorm": {
                "cpu": LayerRepository("kernels-test/absent", layer_name="RMSNorm", version=1)
            }
        }
    ):
        model.use_kernels = True
    assert not any("forward" in m.__dict__ for m in norms(model))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref)


def test_a_missing_variant_is_the_file_not_found_error_transformers_catches(
    hub: Any, tmp_path: Path
) -> None:
    """transformers' lazy kernel loading falls back to its slow path on FileNotFoundError."""
    from kernels import NoCompatibleVariantError
    from transformers.integrations.hub_kernels import get_kernel as tf_get_kernel

    only_cuda = unique_repo("tf-only-cuda")
    publish(hub.endpoint, only_cuda, renamed(cpu_activation("0.1.0"), ["torch-cuda"], tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        tf_get_kernel(only_cuda, version=1)  # passes user_agent= and trust_remote_code=
    assert isinstance(info.value, NoCompatibleVariantError)
