"""The layer API: modes, devices, mappings, marking and kernelize, against the local Hub.

Hub layers come from the example kernels (``rmsnorm``: torch-universal, ``activation``: the
compiled CPU build) published to the session's Hub; each rule of 0.17.2 has a test here, and so
has each defect of 0.17.2 we fix (the "better than" tests).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from kernelhub import (
    counting_rmsnorm,
    cpu_activation,
    publish,
    renamed,
    unique_repo,
    universal_rmsnorm,
)
from kernels import (
    CUDAProperties,
    Device,
    FuncRepository,
    KernelizeFallback,
    LayerRepository,
    LocalLayerRepository,
    LockedLayerRepository,
    Mode,
    ROCMProperties,
    get_loaded_kernels,
    kernelize,
    register_kernel_mapping,
    replace_kernel_forward_from_hub,
    use_kernel_forward_from_hub,
    use_kernel_mapping,
    use_kernelized_func,
)
from kernels.layers.kernelizer import _lookup, _Target, _validate_layer
from kernels.layers.mapping import current_mapping
from kernels.project import lock_project
from torch import nn

CLI = [sys.executable, "-m", "kernels"]


# --- the modules we kernelize ---------------------------------------------------------------------


class CountingNorm(nn.Module):
    """The shape of transformers' LlamaRMSNorm, counting calls of its own forward."""

    def __init__(self, hidden: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(hidden) + 0.5)
        self.variance_epsilon = eps
        self.n_calls = 0

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        self.n_calls += 1
        dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(dtype)


@use_kernel_forward_from_hub("RMSNorm")
class Norm(CountingNorm):
    pass


class CountingSiluAndMul(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.n_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.n_calls += 1
        d = x.shape[-1] // 2
        return F.silu(x[..., :d]) * x[..., d:]


@use_kernel_forward_from_hub("SiluAndMul")
class SiluAndMul(CountingSiluAndMul):
    pass


def layer_of(module: nn.Module) -> Any:
    """The class whose forward ``module`` runs now."""
    bound = module.__dict__.get("forward")
    return type(module) if bound is None else bound.__func__.__qualname__.split(".")[0]


def uses_hub(module: nn.Module) -> bool:
    return "forward" in module.__dict__


@pytest.fixture(scope="module")
def repos(hub: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("layer-repos")
    norm = unique_repo("rmsnorm")
    publish(hub.endpoint, norm, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    act = unique_repo("activation")
    cpu = cpu_activation("0.1.0")
    # A copy of the CPU build under a CUDA variant name: importable here, so the test can see which
    # build the device chose.
    (fake_cuda,) = renamed(cpu, ["torch-cuda"], tmp)
    publish(hub.endpoint, act, [cpu, fake_cuda], branch="v1")
    counting = unique_repo("counting")
    publish(hub.endpoint, counting, [counting_rmsnorm(tmp)], branch="v1")
    only_cuda = unique_repo("only-cuda")
    publish(hub.endpoint, only_cuda, [fake_cuda], branch="v1")
    return {"norm": norm, "act": act, "counting": counting, "only_cuda": only_cuda}


def norm_repo(repos: dict[str, str], **kw: Any) -> LayerRepository:
    return LayerRepository(repos["norm"], layer_name="RMSNorm", version=1, **kw)


def act_repo(repos: dict[str, str], layer: str = "SiluAndMul") -> LayerRepository:
    return LayerRepository(repos["act"], layer_name=layer, version=1)


# --- Mode -----------------------------------------------------------------------------------------


def test_invalid_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        _ = Mode.INFERENCE | Mode.TRAINING
    with pytest.raises(ValueError, match="cannot be combined with other modes"):
        _ = Mode.FALLBACK | Mode.TORCH_COMPILE
    with pytest.raises(ValueError, match="can only be used to register kernel mappings"):
        kernelize(nn.Linear(4, 4), mode=Mode.FALLBACK)
    with pytest.raises(ValueError, match="mode must contain"):
        kernelize(nn.Linear(4, 4), mode=Mode.TORCH_COMPILE)
    assert (Mode.INFERENCE | Mode.TORCH_COMPILE).value == 12
    assert [m.value for m in (Mode.FALLBACK, Mode.TRAINING, Mode.INFERENCE)] == [1, 2, 4]


class _Layer(nn.Module):
    """A stateless layer with the forward of CountingNorm."""

    can_torch_compile = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states


class _Repo:
    """A repository in the protocol's minimal form: ``load()`` returning a class."""

    def __init__(self, name: str) -> None:
        def forward(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
            return hidden_states

        forward.__qualname__ = f"{name}.forward"  # what layer_of reads
        self.layer = type(name, (_Layer,), {"__module__": __name__, "forward": forward})
        self.loads = 0

    def load(self) -> type[nn.Module]:
        self.loads += 1
        return self.layer


TC = Mode.TORCH_COMPILE
ORDER_CASES = [
    # registered modes -> the one each request mode gets (None: the module's own forward)
    ({Mode.TRAINING}, {Mode.INFERENCE: Mode.TRAINING, Mode.TRAINING: Mode.TRAINING,
                       Mode.INFERENCE | TC: None, Mode.TRAINING | TC: None}),
    ({Mode.INFERENCE}, {Mode.INFERENCE: Mode.INFERENCE, Mode.TRAINING: None,
                        Mode.INFERENCE | TC: None, Mode.TRAINING | TC: None}),
    ({Mode.TRAINING | TC}, {Mode.INFERENCE: Mode.TRAINING | TC, Mode.TRAINING: Mode.TRAINING | TC,
                            Mode.INFERENCE | TC: Mode.TRAINING | TC,
                            Mode.TRAINING | TC: Mode.TRAINING | TC}),
    ({Mode.INFERENCE | TC}, {Mode.INFERENCE: Mode.INFERENCE | TC, Mode.TRAINING: None,
                             Mode.INFERENCE | TC: Mode.INFERENCE | TC, Mode.TRAINING | TC: None}),
    ({Mode.FALLBACK, Mode.TRAINING}, {Mode.INFERENCE: Mode.TRAINING, Mode.TRAINING: Mode.TRAINING,
                                      Mode.INFERENCE | TC: Mode.FALLBACK,
                                      Mode.TRAINING | TC: Mode.FALLBACK}),
    ({Mode.INFERENCE, Mode.TRAINING, Mode.INFERENCE | TC, Mode.TRAINING | TC},
     {m: m for m in (Mode.INFERENCE, Mode.TRAINING, Mode.INFERENCE | TC, Mode.TRAINING | TC)}),
]  # fmt: skip


@pytest.mark.parametrize("registered,expected", ORDER_CASES)
def test_mode_fallback_order(registered: set[Mode], expected: dict[Mode, Mode | None]) -> None:
    repos = {mode: _Repo(f"L{mode.value}") for mode in registered}
    norm = Norm()
    with use_kernel_mapping({"RMSNorm": {"cpu": dict(repos)}}, inherit_mapping=False):
        for asked, got in expected.items():
            kernelize(norm, mode=asked, device="cpu")
            want = None if got is None else repos[got].layer.__name__
            assert (layer_of(norm) if uses_hub(norm) else None) == want, (asked, got)


# --- Device ---------------------------------------------------------------------------------------


def test_device_keys_and_properties() -> None:
    assert Device(type="cuda") == Device("cuda") and hash(Device("cuda")) == hash(Device("cuda"))
    props = CUDAProperties(min_capability=75, max_capability=90)
    assert Device("cuda", props) == Device("cuda", CUDAProperties(75, 90))
    with pytest.raises(ValueError, match="only supported for 'cuda'"):
        Device("rocm", props)
    with pytest.raises(ValueError, match="only supported for 'rocm'"):
        Device("cuda", ROCMProperties(min_capability=90, max_capability=95))
    with pytest.raises(ValueError, match="must be <="):
        CUDAProperties(min_capability=90, max_capability=80)
    with pytest.raises(TypeError):
        CUDAProperties(min_capability="8.0", max_capability=90)  # type: ignore[arg-type]


def test_the_narrowest_capability_range_holding_the_device_wins() -> None:
    wide, mid, narrow, other = (_Repo(n) for n in ("Wide", "Mid", "Narrow", "Other"))
    mapping = {
        "RMSNorm": {
            "cuda": wide,
            Device("cuda", CUDAProperties(min_capability=80, max_capability=100)): mid,
            Device("cuda", CUDAProperties(min_capability=90, max_capability=90)): narrow,
            Device("cuda", CUDAProperties(min_capability=100, max_capability=120)): other,
        }
    }
    with use_kernel_mapping(mapping, inherit_mapping=False):
        m = current_mapping()

        def pick(capability: int | None) -> Any:
            target = _Target("cuda", 0, capability, True)
            return _lookup(m, "RMSNorm", target, Mode.INFERENCE).repo  # type: ignore[union-attr]

        assert pick(90) is narrow
        assert pick(86) is mid
        # 100 is in [80, 100] and [100, 120], both 20 wide: the higher minimum wins, always.
        assert pick(100) is other
        assert pick(75) is wide
        assert pick(None) is wide  # capability unknown: only the unrestricted entry serves
    with use_kernel_mapping(
        {"RMSNorm": {Device("rocm", ROCMProperties(min_capability=94, max_capability=95)): wide}},
        inherit_mapping=False,
    ):
        target = _Target("rocm", 0, 90, True)
        miss = _lookup(current_mapping(), "RMSNorm", target, Mode.INFERENCE)
        assert miss.reason == KernelizeFallback.NO_COMPATIBLE_PROPERTIES  # type: ignore[union-attr]


# --- mappings -------------------------------------------------------------------------------------


def test_registrations_merge_and_a_range_is_replaced_once() -> None:
    a, b, c = _Repo("A"), _Repo("B"), _Repo("C")
    with use_kernel_mapping({}, inherit_mapping=False):
        register_kernel_mapping({"RMSNorm": {"cpu": {Mode.TRAINING: a}}})
        register_kernel_mapping({"RMSNorm": {"cpu": {Mode.INFERENCE: b}}})
        norm = Norm()
        kernelize(norm, mode=Mode.TRAINING, device="cpu")
        assert layer_of(norm) == "A"
        kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert layer_of(norm) == "B"
        props = CUDAProperties(min_capability=80, max_capability=90)
        register_kernel_mapping({"RMSNorm": {Device("cuda", props): a}})
        register_kernel_mapping({"RMSNorm": {Device("cuda", CUDAProperties(80, 90)): c}})
        ranges = current_mapping()["RMSNorm"]["cuda"]
        assert list(ranges) == [(80, 90)]
        assert dict(ranges[(80, 90)]) == {Mode.FALLBACK: c}
        register_kernel_mapping({"Other": {"cpu": a}}, inherit_mapping=False)
        assert set(current_mapping()) == {"Other"}


def test_malformed_mappings_fail_where_written() -> None:
    with pytest.raises(ValueError, match=r"layer `RMSNorm` on `cpu`.*not a mode"):
        use_kernel_mapping({"RMSNorm": {"cpu": {Mode.TORCH_COMPILE: _Repo("X")}}})
    with pytest.raises(TypeError, match="not a layer repository"):
        register_kernel_mapping({"RMSNorm": {"cpu": "org/name"}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="device key"):
        register_kernel_mapping({"RMSNorm": {3: _Repo("X")}})  # type: ignore[dict-item]


def test_mapping_contexts_nest_and_restore() -> None:
    a, b = _Repo("A"), _Repo("B")
    with use_kernel_mapping({"X": {"cpu": a}}, inherit_mapping=False):
        with use_kernel_mapping({"Y": {"cpu": b}}):
            assert set(current_mapping()) == {"X", "Y"}
            register_kernel_mapping({"Z": {"cpu": b}})  # ends with the block
            with use_kernel_mapping({"W": {"cpu": a}}, inherit_mapping=False):
                assert set(current_mapping()) == {"W"}
            assert set(current_mapping()) == {"X", "Y", "Z"}
        assert set(current_mapping()) == {"X"}
        scope = use_kernel_mapping({"V": {"cpu": b}})
        with scope, scope:  # one object entered twice
            assert "V" in current_mapping()
        assert set(current_mapping()) == {"X"}


def test_use_kernel_mapping_works_with_locked_repositories(
    repos: dict[str, str], tmp_path: Path
) -> None:
    """0.17.2 deep-copies the mapping on entry, which fails once a locked repository is in it."""
    lockfile = _locked_project(tmp_path, repos["norm"])
    locked = LockedLayerRepository(repos["norm"], lockfile=lockfile, layer_name="RMSNorm")
    outer = use_kernel_mapping({"RMSNorm": {"cpu": locked}}, inherit_mapping=False)
    with outer, use_kernel_mapping({"SiluAndMul": {"cpu": act_repo(repos)}}):
        norm = Norm()
        kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert layer_of(norm) == "RMSNorm"
        x = torch.randn(3, 32)
        torch.testing.assert_close(norm(x), CountingNorm.forward(norm, x))


def test_mappings_are_per_thread_and_per_task() -> None:
    a, b = _Repo("A"), _Repo("B")
    barrier = threading.Barrier(2, timeout=30)
    seen: dict[str, set[str]] = {}

    def worker(name: str, repo: _Repo) -> None:
        with use_kernel_mapping({name: {"cpu": repo}}, inherit_mapping=False):
            barrier.wait()  # both blocks are open at once
            seen[name] = set(current_mapping())
            barrier.wait()

    threads = [threading.Thread(target=worker, args=(n, r)) for n, r in (("TA", a), ("TB", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert seen == {"TA": {"TA"}, "TB": {"TB"}}
    assert not {"TA", "TB"} & set(current_mapping())

    async def task(name: str, repo: _Repo, event: asyncio.Event, other: asyncio.Event) -> set[str]:
        with use_kernel_mapping({name: {"cpu": repo}}, inherit_mapping=False):
            event.set()
            await other.wait()
            return set(current_mapping())

    async def main() -> list[set[str]]:
        e1, e2 = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task("A1", a, e1, e2), task("A2", b, e2, e1)))

    assert asyncio.run(main()) == [{"A1"}, {"A2"}]


# --- marking --------------------------------------------------------------------------------------


def test_marking_classes_and_conditions() -> None:
    class Third(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    replace_kernel_forward_from_hub(Third, "Third", condition=lambda m: getattr(m, "ok", False))
    assert Third.kernel_layer_name == "Third"  # type: ignore[attr-defined]

    class Sub(Third):
        pass

    assert Sub.kernel_layer_name == "Third"  # type: ignore[attr-defined]
    repo = _Repo("ThirdLayer")
    skipped, taken = Sub(), Sub()
    taken.ok = True
    with use_kernel_mapping({"Third": {"cpu": repo}}, inherit_mapping=False):
        kernelize(nn.Sequential(skipped, taken), mode=Mode.INFERENCE, device="cpu")
    assert not uses_hub(skipped) and layer_of(taken) == "ThirdLayer"
    with pytest.raises(TypeError, match="classes or functions"):
        use_kernel_forward_from_hub("X")(42)


def test_function_layers_keep_their_signature() -> None:
    @use_kernel_forward_from_hub("ArgKind")
    def arg_kind(arg1: Any, arg2: Any, *, kwarg1: Any, kwarg2: int = 42) -> tuple[Any, ...]:
        return (arg1, arg2, kwarg1, kwarg2)

    assert isinstance(arg_kind, nn.Module)
    assert arg_kind("foo", "bar", kwarg1="baz") == ("foo", "bar", "baz", 42)
    params = list(inspect.signature(type(arg_kind).forward).parameters)
    assert params == ["self", "arg1", "arg2", "kwarg1", "kwarg2"]

    def reference(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return x * scale

    @functools.wraps(reference)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return reference(*args, **kwargs)

    wrapped = use_kernel_forward_from_hub("Scaled")(wrapper)
    assert list(inspect.signature(type(wrapped).forward).parameters) == ["self", "x", "scale"]


def test_use_kernelized_func_swaps_functions(repos: dict[str, str]) -> None:
    @use_kernel_forward_from_hub("SiluAndMul")
    def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        return F.silu(x[..., :d]) * x[..., d:]

    @use_kernelized_func(silu_and_mul)
    class MLP(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return silu_and_mul(x)

    mlp = MLP()
    assert "SiluAndMul" in mlp._kernel_funcs and not list(mlp.children())
    with use_kernel_mapping({"SiluAndMul": {"cpu": act_repo(repos)}}, inherit_mapping=False):
        kernelize(mlp, mode=Mode.INFERENCE, device="cpu")
    assert layer_of(silu_and_mul) == "SiluAndMul" and uses_hub(silu_and_mul)
    x = torch.randn(4, 16)
    torch.testing.assert_close(mlp(x), F.silu(x[:, :8]) * x[:, 8:])
    with pytest.raises(ValueError, match="not decorated with @use_kernel_forward_from_hub"):
        use_kernelized_func(lambda x: x)


def test_deprecated_func_repository(
    repos: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    @use_kernel_forward_from_hub("rms_norm")
    def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        raise AssertionError("the hub function should run")

    with caplog.at_level(logging.WARNING):
        repo = FuncRepository(repos["norm"], func_name="rms_norm", version=1)
    assert "deprecated" in caplog.text
    with use_kernel_mapping({"rms_norm": {"cpu": repo}}, inherit_mapping=False):
        kernelize(rms_norm, mode=Mode.INFERENCE, device="cpu")
    x, w = torch.randn(2, 8), torch.rand(8)
    torch.testing.assert_close(rms_norm(x, w), F.rms_norm(x, (8,), w, eps=1e-6))


# --- repositories ---------------------------------------------------------------------------------


def test_repositories_make_no_request_and_compare_by_value(hub: Any, repos: dict[str, str]) -> None:
    hub.reset_requests()
    a = LayerRepository(repos["norm"], layer_name="RMSNorm", version=1)
    b = LayerRepository(repos["norm"], layer_name="RMSNorm", version=1)
    c = LayerRepository(repos["norm"], layer_name="RMSNorm", revision="v1")
    t = LayerRepository(repos["norm"], layer_name="RMSNorm", version=1, trust_remote_code=["x/y"])
    assert a == b and hash(a) == hash(b) and a != c and a != t
    assert len({a, b, c, t}) == 3
    assert str(a) == f"`{repos['norm']}` (version 1), layer `RMSNorm`"
    assert LocalLayerRepository(Path("/x"), layer_name="L") == LocalLayerRepository(
        "/x", layer_name="L"
    )
    assert hub.requests() == []
    with pytest.raises(ValueError, match="not both"):
        LayerRepository(repos["norm"], layer_name="RMSNorm", version=1, revision="main")
    with pytest.raises(ValueError, match="either a revision or a version"):
        LayerRepository(repos["norm"], layer_name="RMSNorm")
    with pytest.raises(ValueError, match="invalid repo id"):
        LayerRepository("no-slash", layer_name="RMSNorm", version=1)


def test_local_layer_repository(repos: dict[str, str]) -> None:
    variant = universal_rmsnorm("0.1.0")
    norm = Norm()
    for path in (variant, variant.parent.parent):  # a variant folder, or a checkout with build/
        norm.__dict__.pop("forward", None)
        with use_kernel_mapping(
            {"RMSNorm": {"cpu": LocalLayerRepository(path, layer_name="RMSNorm")}},
            inherit_mapping=False,
        ):
            kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert layer_of(norm) == "RMSNorm"


# --- kernelize ------------------------------------------------------------------------------------


def test_hub_layer_runs_loaded_once_and_warm_kernelize_makes_no_request(
    hub: Any, repos: dict[str, str]
) -> None:
    model = nn.Sequential(*[Norm() for _ in range(200)], SiluAndMul())
    x = torch.randn(4, 32)
    ref = model(x)
    for m in model:
        m.n_calls = 0
    mapping = {
        "RMSNorm": {"cpu": norm_repo(repos)},
        "SiluAndMul": {"cpu": act_repo(repos)},
    }
    hub.reset_requests()
    with use_kernel_mapping(mapping, inherit_mapping=False):
        assert kernelize(model, mode=Mode.INFERENCE) is model  # device from the parameters
    cold = hub.requests()
    files = {
        r.path for r in cold if "/resolve/" in r.path
    }  # one GET per file of the two variants, each once
    assert len(cold) == len(files) + 4, [r.path for r in cold]  # + (resolve, listing) per repo
    torch.testing.assert_close(model(x), ref)
    assert all(m.n_calls == 0 for m in model)  # the hub layers ran, not the modules' forwards
    hub.reset_requests()
    with use_kernel_mapping(mapping, inherit_mapping=False):
        kernelize(model, mode=Mode.INFERENCE)
    assert hub.requests() == []  # refs confirmed within KERNELS_REF_MAX_AGE, commit cached


def test_version_follows_the_ref_rules_without_a_process_cache(
    hub: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = unique_repo("moving")
    publish(hub.endpoint, repo, [counting_rmsnorm(tmp_path, "0.1.0")], branch="v1")
    mapping = {"RMSNorm": {"cpu": LayerRepository(repo, layer_name="RMSNorm", version=1)}}
    norm = Norm()

    def version_used() -> str:
        with use_kernel_mapping(mapping, inherit_mapping=False):
            kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        return sys.modules[norm.forward.__func__.__module__.rsplit(".", 1)[0]].__version__  # type: ignore[attr-defined]

    assert version_used() == "0.1.0"
    publish(hub.endpoint, repo, [counting_rmsnorm(tmp_path / "b", "0.2.0")], branch="v1")
    monkeypatch.setenv("KERNELS_REF_MAX_AGE", "0")
    assert version_used() == "0.2.0"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    assert version_used() == "0.2.0"
    assert hub.requests() == []


def test_the_device_reaches_variant_selection(repos: dict[str, str]) -> None:
    """0.17.2 loads the build of the detected backend whatever device kernelize is given."""
    sm = SiluAndMul()
    with use_kernel_mapping(
        {"SiluAndMul": {"cpu": act_repo(repos), "cuda": act_repo(repos)}}, inherit_mapping=False
    ):
        kernelize(sm, mode=Mode.INFERENCE, device="cuda")
        assert _variant_of(sm) == "torch-cuda"
        kernelize(sm, mode=Mode.INFERENCE, device="cpu")
        assert _variant_of(sm).endswith("-cpu-x86_64-linux") or "-cpu-" in _variant_of(sm)


def _variant_of(module: nn.Module) -> str:
    module_name = module.forward.__func__.__module__  # type: ignore[attr-defined]
    top = module_name.rsplit(".", 1)[0]
    (hit,) = [k for k in get_loaded_kernels() if k.module_name == top]
    assert hit.variant is not None
    return hit.variant


def test_unknown_device_type_is_a_no_device_fallback(repos: dict[str, str]) -> None:
    """0.17.2 raises for a device type it does not know."""
    norm = Norm()
    with use_kernel_mapping({"RMSNorm": {"cpu": norm_repo(repos)}}, inherit_mapping=False):
        kernelize(norm, mode=Mode.INFERENCE, device="quantum")
        assert not uses_hub(norm)
        with pytest.raises(ValueError, match="device type `quantum`"):
            kernelize(norm, mode=Mode.INFERENCE, device="quantum", use_fallback=False)
        kernelize(norm, mode=Mode.INFERENCE, device=torch.device("meta"))
        assert not uses_hub(norm)


def test_each_lookup_miss_falls_back_or_raises(repos: dict[str, str]) -> None:
    norm = Norm()
    cases = [
        ({}, KernelizeFallback.NO_LAYER, "No layer mapping for `RMSNorm`"),
        ({"RMSNorm": {"cuda": norm_repo(repos)}}, KernelizeFallback.NO_DEVICE, "device type `cpu`"),
        (
            {"RMSNorm": {"cpu": {Mode.INFERENCE: norm_repo(repos)}}},
            KernelizeFallback.NO_COMPATIBLE_MODE,
            "mode=Mode.TRAINING",
        ),
    ]
    for mapping, flag, message in cases:
        with use_kernel_mapping(mapping, inherit_mapping=False):
            kernelize(norm, mode=Mode.TRAINING, device="cpu", use_fallback=flag)
            assert not uses_hub(norm)
            with pytest.raises(ValueError, match=message):
                kernelize(
                    norm,
                    mode=Mode.TRAINING,
                    device="cpu",
                    use_fallback=~flag & KernelizeFallback.ALL,
                )


@pytest.mark.parametrize(
    "case",
    ["missing-repo", "no-variant", "missing-layer", "validation", "hub-error"],
)
def test_a_layer_that_cannot_be_loaded_keeps_the_forward(
    case: str, hub: Any, repos: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """0.17.2 falls back only on FileNotFoundError: a missing repo, a missing layer or a failed
    validation abort even with KernelizeFallback.ALL, which is what transformers passes."""

    class TwoArgs(CountingNorm):
        def forward(self, hidden_states: torch.Tensor, extra: Any = None) -> torch.Tensor:  # type: ignore[override]
            return super().forward(hidden_states)

    replace_kernel_forward_from_hub(TwoArgs, "RMSNorm")
    repo, module_cls, builtin, reason = {
        "missing-repo": (LayerRepository("kernels-test/absent", layer_name="RMSNorm", version=1), Norm, OSError, "not found"),
        "no-variant": (LayerRepository(repos["only_cuda"], layer_name="RMSNorm", version=1), Norm, FileNotFoundError, "no build variant"),
        "missing-layer": (LayerRepository(repos["norm"], layer_name="Absent", version=1), Norm, ValueError, "Layer `Absent` not found"),
        "validation": (norm_repo(repos), TwoArgs, TypeError, "different number of arguments"),
        "hub-error": (LayerRepository(unique_repo("flaky"), layer_name="RMSNorm", version=1), Norm, OSError, "403"),
    }[case]  # fmt: skip
    model = nn.Sequential(*[module_cls() for _ in range(5)])
    if case == "hub-error":
        hub.add_fault(path_regex=re.escape(repo.repo_id), status=403, times=None)
    try:
        with use_kernel_mapping({"RMSNorm": {"cpu": repo}}, inherit_mapping=False):
            with caplog.at_level(logging.WARNING, logger="kernels.layers"):
                kernelize(
                    model, mode=Mode.INFERENCE, device="cpu", use_fallback=KernelizeFallback.ALL
                )
            assert not any(uses_hub(m) for m in model)
            warnings = [r for r in caplog.records if r.name == "kernels.layers"]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one line, not five
            text = warnings[0].getMessage()
            assert "`RMSNorm`" in text and repo.repo_id in text and reason in text
            with pytest.raises(builtin, match=reason) as info:
                kernelize(
                    model, mode=Mode.INFERENCE, device="cpu", use_fallback=KernelizeFallback.DEFAULT
                )
            assert "`RMSNorm`" in str(info.value) and repo.repo_id in str(info.value)
    finally:
        hub.clear_faults()


def test_validation_runs_for_every_module_class(repos: dict[str, str]) -> None:
    """0.17.2 validates once per repository: a second class with another forward slips through."""

    @use_kernel_forward_from_hub("RMSNorm")
    class Other(CountingNorm):
        def forward(self, hidden_states: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:  # type: ignore[override]
            return super().forward(hidden_states) * scale

    good, bad = Norm(), Other()
    with use_kernel_mapping({"RMSNorm": {"cpu": norm_repo(repos)}}, inherit_mapping=False):
        kernelize(
            nn.Sequential(good, bad),
            mode=Mode.INFERENCE,
            device="cpu",
            use_fallback=KernelizeFallback.ALL,
        )
        assert uses_hub(good) and not uses_hub(bad)
        with pytest.raises(TypeError, match="does not match `Other`"):
            kernelize(nn.Sequential(Norm(), Other()), mode=Mode.INFERENCE, device="cpu")


def test_layer_validation_rules() -> None:
    class WithInit(nn.Module):
        def __init__(self) -> None:
            super().__init__()

    class WithMember(nn.Module):
        foo: int = 42

    class MoreArgs(nn.Module):
        def forward(self, x: torch.Tensor, foo: int) -> torch.Tensor: ...

    class KeywordOnly(nn.Module):
        def forward(self, *, x: torch.Tensor) -> torch.Tensor: ...

    for cls, message in [
        (WithInit, "not override"),
        (WithMember, "not contain additional members"),
        (MoreArgs, "different number of arguments"),
        (KeywordOnly, "different kind of arguments"),
        (int, "not a Torch layer"),
    ]:
        with pytest.raises(TypeError, match=message):
            _validate_layer(cls=cls, check_cls=CountingSiluAndMul)
    _validate_layer(cls=_Layer, check_cls=CountingNorm)


def test_training_and_compile_need_the_layer_to_support_them(repos: dict[str, str]) -> None:
    sm = SiluAndMul()  # activation's layers have no backward
    with use_kernel_mapping({"SiluAndMul": {"cpu": act_repo(repos)}}, inherit_mapping=False):
        kernelize(sm, mode=Mode.TRAINING, device="cpu")
        assert not uses_hub(sm)
        with pytest.raises(ValueError, match="does not support mode"):
            kernelize(sm, mode=Mode.TRAINING, device="cpu", use_fallback=False)
        kernelize(sm, mode=Mode.INFERENCE | Mode.TORCH_COMPILE, device="cpu")
        assert uses_hub(sm)  # it has fake implementations: torch.compile traces it
    with use_kernel_mapping(
        {"SiluAndMul": {"cpu": {Mode.TRAINING: act_repo(repos)}}}, inherit_mapping=False
    ):
        with pytest.raises(ValueError, match="does not support backward"):
            kernelize(sm, mode=Mode.TRAINING, device="cpu")
        kernelize(sm, mode=Mode.TRAINING, device="cpu", use_fallback=KernelizeFallback.ALL)
        assert not uses_hub(sm)
    no_compile = _Repo("NoCompile")
    no_compile.layer.can_torch_compile = False
    norm = Norm()
    with use_kernel_mapping({"RMSNorm": {"cpu": no_compile}}, inherit_mapping=False):
        with pytest.raises(ValueError, match="does not support mode"):
            kernelize(
                norm, mode=Mode.INFERENCE | Mode.TORCH_COMPILE, device="cpu", use_fallback=False
            )
        kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert layer_of(norm) == "NoCompile"


def test_kernelized_model_under_torch_compile(repos: dict[str, str]) -> None:
    model = nn.Sequential(Norm(), nn.Linear(32, 64), SiluAndMul())
    x = torch.randn(4, 32)
    ref = model(x)
    mapping = {"RMSNorm": {"cpu": norm_repo(repos)}, "SiluAndMul": {"cpu": act_repo(repos)}}
    with use_kernel_mapping(mapping, inherit_mapping=False):
        kernelize(model, mode=Mode.INFERENCE | Mode.TORCH_COMPILE)
    assert uses_hub(model[0]) and uses_hub(model[2])
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), ref)


def test_disable_kernel_mapping_keeps_every_forward(
    repos: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    norm = Norm()
    with use_kernel_mapping({"RMSNorm": {"cpu": norm_repo(repos)}}, inherit_mapping=False):
        kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert uses_hub(norm)
        monkeypatch.setenv("DISABLE_KERNEL_MAPPING", "1")
        kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert not uses_hub(norm)


# --- locked layers in an installed package --------------------------------------------------------


def _locked_project(root: Path, repo: str, dist: str = "sample") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\n\n[tool.kernels.dependencies]\n"{repo}" = 1\n'
    )
    lock_project(root)
    return root / "kernels.lock"


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_locked_layer_repository_in_an_installed_package_kernelizes_offline(
    hub: Any, repos: dict[str, str], tmp_path: Path, editable: bool
) -> None:
    dist = f"sample_layers_{'e' if editable else 'r'}_{os.getpid()}"
    proj = tmp_path / "proj"
    _locked_project(proj, repos["counting"], dist)
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(
        '[build-system]\nrequires = ["setuptools>=64", "kernels"]\nbuild-backend = "setuptools.build_meta"\n\n'
        + pyproject.read_text()
        + f'\n[tool.setuptools]\npackages = ["{dist}"]\n'
    )
    (proj / dist).mkdir()
    (proj / dist / "__init__.py").write_text(
        textwrap.dedent(
            f"""\
            import torch
            from kernels import LockedLayerRepository, Mode, kernelize, use_kernel_forward_from_hub
            from kernels import use_kernel_mapping
            from torch import nn

            MAPPING = {{"RMSNorm": {{"cpu": LockedLayerRepository({repos["counting"]!r}, layer_name="RMSNorm")}}}}


            @use_kernel_forward_from_hub("RMSNorm")
            class Norm(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.weight = nn.Parameter(torch.ones(8))
                    self.variance_epsilon = 1e-6

                def forward(self, hidden_states):
                    raise AssertionError("the hub layer should run")


            def run():
                model = nn.Sequential(Norm(), Norm())
                with use_kernel_mapping(MAPPING):
                    kernelize(model, mode=Mode.INFERENCE)
                model(torch.ones(2, 8))
                import sys
                layers = sys.modules[model[0].forward.__func__.__module__]
                return layers.CALLS["inference"]
            """
        )
    )
    assert subprocess.run([*CLI, "download", str(proj)], capture_output=True).returncode == 0
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps"]
    inst = subprocess.run(
        [*cmd, *(["-e"] if editable else []), str(proj)], capture_output=True, text=True
    )
    try:
        assert inst.returncode == 0, inst.stdout + inst.stderr
        hub.reset_requests()
        run = subprocess.run(
            [sys.executable, "-c", f"import {dist}; print({dist}.run())"],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "2"
        assert hub.requests() == []
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", dist], capture_output=True)


def test_layer_repositories_follow_the_publisher_trust(hub: Any) -> None:
    """A repo of an organisation the Hub does not trust is a CANNOT_LOAD (named in the warning)
    unless the repository trusts it, as get_kernel's trust_remote_code does."""
    repo = f"untrusted-org/rmsnorm-{os.getpid()}"
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1")
    norm = Norm()
    refused = LayerRepository(repo, layer_name="RMSNorm", version=1)
    with use_kernel_mapping({"RMSNorm": {"cpu": refused}}, inherit_mapping=False):
        with pytest.raises(ValueError, match="untrusted-org"):
            kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        kernelize(norm, mode=Mode.INFERENCE, device="cpu", use_fallback=KernelizeFallback.ALL)
        assert not uses_hub(norm)
    for trust in (True, [repo]):
        allowed = LayerRepository(repo, layer_name="RMSNorm", version=1, trust_remote_code=trust)
        with use_kernel_mapping({"RMSNorm": {"cpu": allowed}}, inherit_mapping=False):
            kernelize(norm, mode=Mode.INFERENCE, device="cpu")
        assert layer_of(norm) == "RMSNorm"
        norm.__dict__.pop("forward")
