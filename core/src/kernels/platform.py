"""What the running interpreter can load: torch version, C++ ABI, compute backend, CPU arch, OS.

Detection reads ``torch/version.py`` from the installed torch instead of importing torch when torch
is not imported yet (importing torch costs over a second); when torch is already imported, its live
attributes are used. Nothing here ever imports torch twice.
"""

from __future__ import annotations

import importlib.util
import platform as _platform
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.version import Version

from kernels.errors import InvalidArgumentError, MissingDependencyError

BACKENDS = ("cuda", "rocm", "xpu", "cpu", "metal", "npu", "neuron", "tpu")

# Device plugins that make torch another backend when installed (torch autoloads them); found
# without importing anything, in the order 0.17.2 checks them.
_PLUGIN_BACKENDS = (("torch_tpu", "tpu"), ("torch_neuronx", "neuron"))


@dataclass(frozen=True)
class Platform:
    """The build-relevant facts about one interpreter."""

    torch_version: Version
    cxx11_abi: bool
    backend: str
    """One of :data:`BACKENDS`."""
    backend_version: Version | None
    """CUDA, ROCm or XPU version (``13.0``, ``7.1``, ``2025.3``); ``None`` for cpu and metal."""
    arch: str
    """``x86_64`` or ``aarch64``."""
    os: str
    """``linux``, ``darwin`` or ``windows``."""
    tvm_ffi_version: Version | None = None
    """Major.minor of the installed ``apache-tvm-ffi``, for ``tvm-ffi...`` variants."""
    free_threaded: bool = False
    """A free-threaded (no GIL) CPython before 3.15, which cannot load compiled (ABI3) builds."""
    macos_version: Version | None = None

    @property
    def torch_tag(self) -> str:
        """``torch213`` for torch 2.13."""
        return f"torch{self.torch_version.major}{self.torch_version.minor}"

    @property
    def backend_tag(self) -> str:
        """``cu130``, ``rocm71``, ``xpu20253``, ``cann81``, ``cpu``, ``metal``, ``neuron``, ``tpu``."""
        v = self.backend_version
        if self.backend == "cuda" and v is not None:
            return f"cu{v.major}{v.minor}"
        if self.backend == "npu" and v is not None:
            return f"cann{v.major}{v.minor}"
        if self.backend == "rocm" and v is not None:
            return f"rocm{v.major}{v.minor}"
        if self.backend == "xpu" and v is not None:
            return f"xpu{v.major}{v.minor}"
        return self.backend

    @property
    def variant(self) -> str:
        """The exact build variant name for this platform (e.g. ``torch213-cxx11-cpu-x86_64-linux``)."""
        if self.os == "linux":
            abi = "cxx11" if self.cxx11_abi else "cxx98"
            return f"{self.torch_tag}-{abi}-{self.backend_tag}-{self.arch}-{self.os}"
        return f"{self.torch_tag}-{self.backend_tag}-{self.arch}-{self.os}"


def _normalize_arch(machine: str) -> str:
    machine = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def _os_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    return sys.platform


def _torch_version_info() -> dict[str, object]:
    """Return torch's ``version.py`` namespace without importing torch when possible."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "version"):
        v = torch.version
        return {k: getattr(v, k, None) for k in ("__version__", "cuda", "hip", "xpu")}
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "PyTorch is not installed in this interpreter "
            f"({sys.executable}); install torch to load compiled kernels"
        )
    version_py = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    namespace: dict[str, object] = {}
    # torch/version.py is a generated file of plain assignments; executing it does not import torch.
    exec(compile(version_py.read_text(encoding="utf-8"), str(version_py), "exec"), namespace)
    return namespace


def _cxx11_abi(torch_version: Version, os_name: str) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "_C"):
        return bool(torch._C._GLIBCXX_USE_CXX11_ABI)
    if os_name != "linux" or torch_version >= Version("2.7"):
        # Every Linux wheel since torch 2.7 uses the C++11 ABI; elsewhere the tag is not used.
        return True
    import torch as _torch  # only old torch builds force this import

    return bool(_torch._C._GLIBCXX_USE_CXX11_ABI)


def _parse_version(text: object) -> Version | None:
    if not text:
        return None
    parts = str(text).split(".")
    try:
        return Version(".".join(parts[:2]))
    except Exception:
        return None


def _torch_live_backend(torch: object) -> str | None:
    """The plugin backend of an imported torch (0.17.2's checks), or ``None``."""
    if hasattr(getattr(torch, "backends", None), "tpu"):
        return "tpu"
    if hasattr(torch, "neuron"):
        return "neuron"
    return None


def _plugin_backend() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "version"):
        return _torch_live_backend(torch)
    for module, backend in _PLUGIN_BACKENDS:
        if importlib.util.find_spec(module) is not None:
            return backend
    return None


def _xpu_version(raw: object) -> Version | None:
    """``torch.version.xpu`` is a oneAPI date such as ``20250301``: version 2025.3."""
    text = str(raw)
    if text.isdigit() and len(text) >= 6:
        return Version(f"{text[:4]}.{int(text[4:6])}")
    return _parse_version(text)


def _npu_version() -> Version | None:
    """CANN's version, from torch_npu (this imports torch: an NPU kernel needs it anyway)."""
    try:
        from torch_npu.utils.collect_env import get_cann_version  # type: ignore[import-not-found]

        raw = str(get_cann_version())
    except Exception:
        return None
    return _parse_version(raw)


def _tvm_ffi_version() -> Version | None:
    module = sys.modules.get("tvm_ffi")
    if module is not None:
        return _parse_version(getattr(module, "__version__", None))
    from importlib.metadata import PackageNotFoundError, version

    try:
        return _parse_version(version("apache-tvm-ffi"))
    except PackageNotFoundError:
        return None


def _free_threaded() -> bool:
    if not (3, 13) <= sys.version_info < (3, 15):
        return False  # free-threaded builds start at 3.13; from 3.15 they load ABI3 builds
    if hasattr(sys, "abiflags"):  # POSIX: the ``t`` ABI tag, no import needed
        return "t" in sys.abiflags
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _macos_version(os_name: str) -> Version | None:
    return _parse_version(_platform.mac_ver()[0]) if os_name == "darwin" else None


@cache
def detect_platform(backend: str | None = None) -> Platform:
    """Describe the running interpreter; ``backend`` overrides the detected compute backend.

    Raises :class:`~kernels.errors.MissingDependencyError` when torch is not installed and
    :class:`~kernels.errors.InvalidArgumentError` when ``backend`` is unknown.
    """
    if backend is not None and backend not in BACKENDS:
        raise InvalidArgumentError(
            f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}"
        )
    info = _torch_version_info()
    torch_version = Version(Version(str(info["__version__"])).base_version)
    os_name = _os_name()
    arch = _normalize_arch(_platform.machine())
    detected: str
    backend_version: Version | None = None
    plugin = _plugin_backend()
    if plugin is not None:
        detected = plugin
    elif info.get("cuda"):
        detected, backend_version = "cuda", _parse_version(info["cuda"])
    elif info.get("hip"):
        detected, backend_version = "rocm", _parse_version(info["hip"])
    elif info.get("xpu"):
        detected, backend_version = "xpu", _xpu_version(info["xpu"])
    elif os_name == "darwin" and arch == "aarch64":
        detected = "metal"
    elif importlib.util.find_spec("torch_npu") is not None:
        detected = "npu"
    else:
        detected = "cpu"
    if detected == "npu":
        backend_version = _npu_version()
    if backend is not None and backend != detected:
        detected, backend_version = backend, None
    return Platform(
        torch_version=torch_version,
        cxx11_abi=_cxx11_abi(torch_version, os_name),
        backend=detected,
        backend_version=backend_version,
        arch=arch,
        os=os_name,
        tvm_ffi_version=_tvm_ffi_version(),
        free_threaded=_free_threaded(),
        macos_version=_macos_version(os_name),
    )
