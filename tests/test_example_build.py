"""The example kernels built by ``examples/kernels/build.py``: layout, metadata, numerics, caching.

The first build of ``activation`` compiles C++ (seconds to a minute); later builds are cache hits in
``$KERNELS_BUILD_CACHE``, which conftest points at the session's work folder. Variants are loaded the
way the loader does it: under their metadata id, from a folder that is not on ``sys.path``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "kernels"
if str(EXAMPLES) not in sys.path:  # conftest does this too; kept for running this file alone
    sys.path.insert(0, str(EXAMPLES))

import build as example_build  # noqa: E402  (examples/kernels/build.py)

ACTIVATION = EXAMPLES / "activation"
RMSNORM = EXAMPLES / "rmsnorm"
ID_RE = re.compile(r"^_(activation|rmsnorm)_[0-9a-f]{7}$")


def load_variant(variant: Path) -> ModuleType:
    """Import a built variant folder under its metadata id, as the loader does."""
    module_id = json.loads((variant / "metadata.json").read_text("utf-8"))["id"]
    if module_id in sys.modules:
        return sys.modules[module_id]
    spec = importlib.util.spec_from_file_location(
        module_id, variant / "__init__.py", submodule_search_locations=[str(variant)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_id] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_id]
        raise
    return module


def metadata(variant: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((variant / "metadata.json").read_text("utf-8"))
    return meta


@pytest.fixture(scope="module")
def activation_build() -> tuple[Path, float]:
    """The CPU variant of ``activation`` and the seconds the (possibly cached) build took."""
    started = time.perf_counter()
    variant = example_build.build_variant(ACTIVATION, backend="cpu")
    return variant, time.perf_counter() - started


@pytest.fixture(scope="module")
def activation_variant(activation_build: tuple[Path, float]) -> Path:
    return activation_build[0]


@pytest.fixture(scope="module")
def activation(activation_variant: Path) -> ModuleType:
    return load_variant(activation_variant)


@pytest.fixture(scope="module")
def rmsnorm_variant() -> Path:
    return example_build.build_variant(RMSNORM, backend="universal")


# --- layout and metadata -------------------------------------------------------------------------


def test_activation_variant_layout(activation_variant: Path) -> None:
    from kernels.variants import build_variant_name

    meta = metadata(activation_variant)
    assert activation_variant.name == build_variant_name("cpu")
    assert activation_variant.parent.name == "build"
    assert set(example_build.variant_files(activation_variant)) == {
        "__init__.py",
        "layers.py",
        "_fake.py",
        "_ops.py",
        "_version.py",
        f"{meta['id']}.abi3.so",
        "activation/__init__.py",
        "metadata.json",
    }


def test_activation_metadata(activation_variant: Path) -> None:
    meta = metadata(activation_variant)
    assert ID_RE.match(meta["id"]) and meta["id"].startswith("_activation_")
    assert meta["name"] == "activation"
    assert meta["version"] == "0.1.0"
    assert meta["license"] == "apache-2.0"
    assert meta["python-depends"] == []
    assert meta["backend"] == {"type": "cpu"}
    assert meta["id"] == example_build.kernel_id(ACTIVATION, backend="cpu")


@pytest.mark.parametrize("which", ["activation", "rmsnorm"])
def test_digest_lists_every_other_file(
    which: str, activation_variant: Path, rmsnorm_variant: Path
) -> None:
    variant = activation_variant if which == "activation" else rmsnorm_variant
    digest = metadata(variant)["digest"]
    assert digest["algorithm"] == "sha256"
    on_disk = set(example_build.variant_files(variant)) - {"metadata.json"}
    assert set(digest["files"]) == on_disk
    for rel, expected in digest["files"].items():
        actual = base64.b64encode(hashlib.sha256((variant / rel).read_bytes()).digest()).decode()
        assert actual == expected, rel


# --- numerics ------------------------------------------------------------------------------------

SHAPES = [(4, 1000), (3, 5, 38), (14,), (0, 6)]


def _reference(op: str, x: torch.Tensor) -> torch.Tensor:
    """torch's own result, computed in float32 (or float64) and rounded once, like the kernels."""
    xf = x.double() if x.dtype == torch.float64 else x.float()
    if op == "gelu":
        ref = F.gelu(xf)
    elif op in ("gelu_fast", "gelu_tanh"):
        ref = F.gelu(xf, approximate="tanh")
    else:
        d = xf.shape[-1] // 2
        ref = F.silu(xf[..., :d]) * xf[..., d:]
    return ref.to(x.dtype)


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64], ids=str
)
@pytest.mark.parametrize("op", ["gelu_fast", "gelu", "gelu_tanh", "silu_and_mul"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_ops_match_torch(
    activation: ModuleType, op: str, dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    x = (torch.randn(shape) * 3).to(dtype)
    out_shape = (*shape[:-1], shape[-1] // 2) if op == "silu_and_mul" else shape
    out = torch.full(out_shape, float("nan"), dtype=dtype)
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = getattr(activation, op)
    assert fn(out, x) is out
    torch.testing.assert_close(out, _reference(op, x))


def test_gelu_fast_is_torch_tanh_gelu(activation: ModuleType) -> None:
    # In float64 the two formulations agree to rounding: any formula slip would show.
    x = torch.linspace(-12, 12, 100_001, dtype=torch.float64)
    out = activation.gelu_fast(torch.empty_like(x), x)
    torch.testing.assert_close(out, F.gelu(x, approximate="tanh"), rtol=1e-13, atol=1e-13)
    xf = x.float()
    out32 = activation.gelu_fast(torch.empty_like(xf), xf)
    torch.testing.assert_close(out32, F.gelu(xf, approximate="tanh"))


def test_large_input_runs_in_parallel_chunks(activation: ModuleType) -> None:
    x = torch.randn(1 << 20)
    torch.testing.assert_close(activation.gelu(torch.empty_like(x), x), F.gelu(x))
    y = torch.randn(1024, 2 * 1000)
    out = activation.silu_and_mul(torch.empty(1024, 1000), y)
    torch.testing.assert_close(out, F.silu(y[:, :1000]) * y[:, 1000:])


def test_in_place(activation: ModuleType) -> None:
    x = torch.randn(64, 33)
    expected = F.gelu(x, approximate="tanh")
    assert activation.gelu_tanh(x, x) is x
    torch.testing.assert_close(x, expected)


def test_argument_errors(activation: ModuleType) -> None:
    x = torch.randn(4, 8)
    with pytest.raises(RuntimeError, match="contiguous"):
        activation.gelu(torch.empty(8, 4), x.t())
    with pytest.raises(RuntimeError, match="shape"):
        activation.gelu(torch.empty(4, 7), x)
    with pytest.raises(RuntimeError, match="dtype"):
        activation.gelu(torch.empty(4, 8, dtype=torch.float64), x)
    with pytest.raises(RuntimeError, match="even"):
        activation.silu_and_mul(torch.empty(4, 3), torch.randn(4, 7))
    with pytest.raises(RuntimeError, match="shape"):
        activation.silu_and_mul(torch.empty(4, 8), x)
    buf = torch.randn(1, 8)
    with pytest.raises(RuntimeError, match="single memory location"):
        activation.silu_and_mul(buf[:, :4], buf)  # a contiguous view into its own input
    with pytest.raises(RuntimeError, match="not implemented"):
        activation.gelu(torch.empty(4, dtype=torch.int32), torch.ones(4, dtype=torch.int32))


def test_layers(activation: ModuleType) -> None:
    x = torch.randn(6, 10).t()  # non-contiguous: the modules make it contiguous
    torch.testing.assert_close(activation.layers.GeluFast()(x), F.gelu(x, approximate="tanh"))
    torch.testing.assert_close(activation.layers.SiluAndMul()(x), F.silu(x[:, :3]) * x[:, 3:])
    torch.testing.assert_close(activation.layers.Silu()(x), F.silu(x))
    torch.testing.assert_close(activation.layers.GeluTanh()(x), F.gelu(x, approximate="tanh"))
    torch.testing.assert_close(activation.layers.Gelu()(x), F.gelu(x))


def test_layers_trace_under_torch_compile(activation: ModuleType) -> None:
    # The fake implementations let dynamo trace the out-parameter ops in one graph.
    torch._dynamo.reset()
    layer = torch.compile(activation.layers.SiluAndMul(), fullgraph=True)
    x = torch.randn(4, 16)
    torch.testing.assert_close(layer(x), F.silu(x[:, :8]) * x[:, 8:])


def test_ops_live_in_the_id_namespace(activation: ModuleType, activation_variant: Path) -> None:
    kid = metadata(activation_variant)["id"]
    assert activation.__name__ == kid
    assert activation.__version__ == "0.1.0"
    assert activation.add_op_namespace_prefix("gelu") == f"{kid}::gelu"
    assert activation.ops is getattr(torch.ops, kid)
    x = torch.randn(5)
    out = torch.empty(5)
    getattr(torch.ops, kid).gelu_fast(out, x)
    torch.testing.assert_close(out, F.gelu(x, approximate="tanh"))


def test_compat_package_reexports(activation: ModuleType) -> None:
    compat = importlib.import_module(f"{activation.__name__}.activation")
    assert compat.gelu_fast is activation.gelu_fast
    assert compat.__version__ == activation.__version__


def test_compat_package_from_sys_path(activation_variant: Path) -> None:
    # Old loaders put the variant folder on sys.path and import the kernel by its plain name.
    script = textwrap.dedent(
        """
        import sys, torch
        sys.path.insert(0, sys.argv[1])
        import activation
        x = torch.randn(16)
        out = activation.gelu(torch.empty_like(x), x)
        torch.testing.assert_close(out, torch.nn.functional.gelu(x))
        print(activation.__version__)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(activation_variant)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0.1.0"


# --- caching and ids -----------------------------------------------------------------------------


def test_second_build_is_a_cache_hit(activation_build: tuple[Path, float]) -> None:
    variant, first_seconds = activation_build
    started = time.perf_counter()
    again = example_build.build_variant(ACTIVATION, backend="cpu")
    elapsed = time.perf_counter() - started
    assert again == variant
    assert elapsed < 0.5, f"cache hit took {elapsed:.3f} s (first build: {first_seconds:.1f} s)"


def test_cli_build_hits_the_same_cache_entry(activation_variant: Path) -> None:
    # The command line does not import torch; its cache key must still equal this process's.
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "build.py"), "build", "activation"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == activation_variant
    assert time.perf_counter() - started < 30


def test_two_versions_get_their_own_ids_and_namespaces(
    activation: ModuleType, activation_variant: Path
) -> None:
    v2 = example_build.build_variant(ACTIVATION, backend="cpu", version="0.2.0")
    assert v2 != activation_variant
    id1, id2 = metadata(activation_variant)["id"], metadata(v2)["id"]
    assert id1 != id2 and ID_RE.match(id2)
    assert metadata(v2)["version"] == "0.2.0"
    second = load_variant(v2)
    # Both versions work side by side in this process, each through its own torch.ops namespace.
    assert second.__version__ == "0.2.0" and activation.__version__ == "0.1.0"
    assert second.ops is not activation.ops
    x = torch.randn(3, 8)
    torch.testing.assert_close(
        second.silu_and_mul(torch.empty(3, 4), x), activation.silu_and_mul(torch.empty(3, 4), x)
    )


def test_backend_is_part_of_the_id() -> None:
    assert example_build.kernel_id(ACTIVATION, backend="cpu") != example_build.kernel_id(
        ACTIVATION, backend="cuda"
    )


@pytest.mark.skipif(torch.version.cuda is not None, reason="torch has CUDA here")
def test_cuda_build_needs_cuda_torch() -> None:
    with pytest.raises(example_build.BuildError, match="CUDA build of torch"):
        example_build.build_variant(ACTIVATION, backend="cuda")


def test_bad_requests_are_build_errors(tmp_path: Path) -> None:
    with pytest.raises(example_build.BuildError, match="not 'universal'"):
        example_build.build_variant(ACTIVATION, backend="universal")
    with pytest.raises(example_build.BuildError, match=r"no kernel\.toml"):
        example_build.build_variant(tmp_path)
    with pytest.raises(example_build.BuildError, match="version"):
        example_build.build_variant(RMSNORM, version="../x")


def test_concurrent_builders_share_one_build(tmp_path: Path) -> None:
    # Three processes build the same kernel into an empty cache at once: the file lock lets one
    # compile while the others wait and then reuse its result.
    cache = tmp_path / "cache"
    script = "import sys, build; print(build.build_variant(build.EXAMPLES_DIR / 'activation'))"
    pythonpath = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "KERNELS_BUILD_CACHE": str(cache), "PYTHONPATH": pythonpath}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    built = Path(paths.pop())
    assert (built / "metadata.json").is_file()
    entries = sorted(p.name for p in cache.iterdir() if p.name != ".locks")
    assert entries == [built.parent.parent.name], entries  # no leftover staging folders


# --- CUDA (runs only where torch has CUDA and a GPU) -----------------------------------------------

needs_gpu = pytest.mark.skipif(
    torch.version.cuda is None or not torch.cuda.is_available(), reason="needs a CUDA GPU"
)


@pytest.fixture(scope="module")
def cuda_activation() -> tuple[Path, ModuleType]:
    variant = example_build.build_variant(ACTIVATION, backend="cuda")
    return variant, load_variant(variant)


@pytest.mark.cuda
@needs_gpu
def test_cuda_variant_metadata(cuda_activation: tuple[Path, ModuleType]) -> None:
    from kernels.variants import build_variant_name

    variant, _ = cuda_activation
    meta = metadata(variant)
    assert variant.name == build_variant_name("cuda") and "-cu" in variant.name
    assert meta["backend"]["type"] == "cuda" and meta["backend"]["archs"]
    assert meta["id"] == example_build.kernel_id(ACTIVATION, backend="cuda")


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["gelu_fast", "gelu", "gelu_tanh", "silu_and_mul"])
@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "offset"])
def test_cuda_ops_match_torch(
    cuda_activation: tuple[Path, ModuleType], op: str, dtype: torch.dtype, aligned: bool
) -> None:
    _, mod = cuda_activation
    torch.manual_seed(0)
    for shape in [(4, 1000), (3, 5, 38), (14,), (0, 6), (2, 2 * 4099), (1 << 20,)]:
        out_shape = (*shape[:-1], shape[-1] // 2) if op == "silu_and_mul" else shape
        n_in, n_out = int(torch.Size(shape).numel()), int(torch.Size(out_shape).numel())
        # One element of offset makes the pointers miss 16-byte alignment: the scalar path.
        skip = 0 if aligned else 1
        x = (torch.randn(n_in + skip, device="cuda") * 3).to(dtype)[skip:].view(shape)
        out = torch.full((n_out + skip,), float("nan"), device="cuda", dtype=dtype)
        out = out[skip:].view(out_shape)
        assert getattr(mod, op)(out, x) is out
        torch.testing.assert_close(out.cpu(), _reference(op, x.cpu()), msg=f"{op} {shape}")


@pytest.mark.cuda
@needs_gpu
def test_cuda_runs_on_the_current_stream_and_keeps_cpu(
    cuda_activation: tuple[Path, ModuleType],
) -> None:
    _, mod = cuda_activation
    x = torch.randn(1 << 22, device="cuda")
    out = torch.empty_like(x)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        mod.gelu_fast(out, x)
    stream.synchronize()
    torch.testing.assert_close(out, F.gelu(x, approximate="tanh"))
    with pytest.raises(RuntimeError, match="out is on"):
        mod.gelu(torch.empty(4), torch.randn(4, device="cuda"))
    with pytest.raises(RuntimeError, match="not implemented"):
        mod.gelu(torch.empty(4, device="cuda", dtype=torch.float64), x[:4].double())
    # The CPU kernels are in the CUDA build too.
    xc = torch.randn(32)
    torch.testing.assert_close(mod.gelu(torch.empty(32), xc), F.gelu(xc))


# --- the universal kernel ------------------------------------------------------------------------


def test_rmsnorm_is_universal(rmsnorm_variant: Path) -> None:
    meta = metadata(rmsnorm_variant)
    assert rmsnorm_variant.name == "torch-universal"
    assert meta["backend"] == {"type": "universal"}
    assert ID_RE.match(meta["id"]) and meta["name"] == "rmsnorm"
    assert not list(rmsnorm_variant.glob("*.so"))
    # A universal kernel has one build whatever backend is asked for.
    assert example_build.build_variant(RMSNORM, backend="cpu") == rmsnorm_variant


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_rmsnorm_loads_and_matches(rmsnorm_variant: Path, dtype: torch.dtype) -> None:
    assert not any(Path(p) == rmsnorm_variant for p in sys.path)
    mod = load_variant(rmsnorm_variant)
    kid = metadata(rmsnorm_variant)["id"]
    assert f"{kid}._impl" in sys.modules  # reached through ``from ._impl import rms_norm``
    assert mod.__version__ == "0.1.0"
    torch.manual_seed(0)
    x = torch.randn(4, 7, 64).to(dtype)
    w = torch.rand(64).to(dtype) + 0.5
    ref = F.rms_norm(x.float(), (64,), w.float(), eps=1e-6).to(dtype)
    torch.testing.assert_close(mod.rms_norm(x, w), ref)
    # The hub layer is stateless: it runs on the replaced module's ``weight`` and ``variance_epsilon``.
    host = torch.nn.Module()
    host.weight = torch.nn.Parameter(w.float())
    host.variance_epsilon = 1e-6
    out = mod.layers.RMSNorm.forward(host, x.float())
    torch.testing.assert_close(out, F.rms_norm(x.float(), (64,), w.float(), eps=1e-6))


# --- publishing ----------------------------------------------------------------------------------


def test_publish_examples_to_the_local_hub(hub: Any, hf_api: Any, activation: ModuleType) -> None:
    # ``activation`` was imported from the cache folder first, so that folder holds __pycache__,
    # which must not be uploaded. A private org keeps other tests' kernels-community repos as they
    # left them.
    org = f"kernels-build-{os.getpid()}-{time.monotonic_ns()}"
    commits = example_build.publish_examples(hub.endpoint, org=org)
    expected = {
        f"{org}/activation": example_build.build_variant(ACTIVATION, backend="cpu"),
        f"{org}/rmsnorm": example_build.build_variant(RMSNORM, backend="universal"),
        # its kernel-depends point at the org it is published to
        f"{org}/scaled-rmsnorm": example_build.build_variant(
            EXAMPLES / "scaled-rmsnorm",
            backend="universal",
            kernel_depends={"rmsnorm": {"repo-id": f"{org}/rmsnorm", "version": 1}},
        ),
    }
    assert set(commits) == set(expected)
    for repo, sha in commits.items():
        refs = hf_api.list_repo_refs(repo, repo_type="kernel")
        assert {b.name: b.target_commit for b in refs.branches}["v1"] == sha
        assert {t.name: t.target_commit for t in refs.tags}["v0.1.0"] == sha
        variant = expected[repo]
        want = {f"build/{variant.name}/{rel}" for rel in example_build.variant_files(variant)}
        for revision in ("v1", "main", "v0.1.0"):
            files = set(hf_api.list_repo_files(repo, repo_type="kernel", revision=revision))
            assert want | {"README.md"} <= files, revision
            assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]

    # Publishing again keeps the branch and the tag together.
    again = example_build.publish_examples(hub.endpoint, org=org)
    for repo, sha in again.items():
        refs = hf_api.list_repo_refs(repo, repo_type="kernel")
        assert {b.name: b.target_commit for b in refs.branches}["v1"] == sha
        assert {t.name: t.target_commit for t in refs.tags}["v0.1.0"] == sha


def test_republishing_a_variant_drops_its_old_files(hub: Any, hf_api: Any) -> None:
    # Versions 0.1.0 and 0.2.0 have different ids, so different library file names: the old
    # library must not stay behind in build/<variant>/.
    repo = f"kernels-test/build-{os.getpid()}-{time.monotonic_ns()}"
    old = example_build.build_variant(ACTIVATION, backend="cpu")
    new = example_build.build_variant(ACTIVATION, backend="cpu", version="0.2.0")
    example_build.publish_kernel(hub.endpoint, repo, [old], branch="v0", tags=["v0.1.0"])
    sha = example_build.publish_kernel(hub.endpoint, repo, [new], branch="v0", tags=["v0.2.0"])
    files = set(hf_api.list_repo_files(repo, repo_type="kernel", revision="v0"))
    assert {f for f in files if f.startswith("build/")} == {
        f"build/{new.name}/{rel}" for rel in example_build.variant_files(new)
    }
    refs = hf_api.list_repo_refs(repo, repo_type="kernel")
    tags = {t.name: t.target_commit for t in refs.tags}
    assert tags["v0.2.0"] == sha and tags["v0.1.0"] != sha
