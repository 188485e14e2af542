"""What one benchmark process does; run by ``benchmarks/run.py`` under either implementation.

Standard library only, so that the same file runs in this project's venv and in the upstream
``kernels`` venv. Each command prints one JSON line last on stdout with its in-process timings
(seconds, ``time.perf_counter``), taken after the interpreter started:

- ``import-kernels``: ``import kernels`` alone.
- ``get-kernel REPO (--version N | --revision R) [--barrier DIR]``: ``import torch``, then
  ``import kernels`` plus ``get_kernel(...)`` (``load``). With ``--barrier``, the process creates
  ``DIR/ready-<pid>`` after importing torch and waits for ``DIR/go`` before loading, so that
  concurrent processes load at the same moment.
- ``import-folder DIR``: ``import torch``, then the kernel package in DIR imported by file location
  under its ``metadata.json`` id, as both loaders do (the kernel's own import cost, ``load``).
- ``import-package NAME``: ``import torch``, then ``import NAME`` (a package whose import calls
  ``load_kernel``) (``load``).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def _import_torch() -> float:
    t = time.perf_counter()
    import torch  # noqa: F401

    return time.perf_counter() - t


def _check(module: object) -> None:
    # A loaded activation kernel exposes gelu_fast; anything else means the load went wrong.
    if not callable(getattr(module, "gelu_fast", None)):
        raise SystemExit(f"loaded {module!r}, which has no gelu_fast")


def main() -> None:
    """Parse the command, run it and print its timings as JSON."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("import-kernels")
    gk = sub.add_parser("get-kernel")
    gk.add_argument("repo")
    gk.add_argument("--version", type=int)
    gk.add_argument("--revision")
    gk.add_argument("--barrier", type=Path)
    folder = sub.add_parser("import-folder")
    folder.add_argument("dir", type=Path)
    pkg = sub.add_parser("import-package")
    pkg.add_argument("name")
    args = parser.parse_args()

    out: dict[str, object] = {}
    if args.cmd == "import-kernels":
        t = time.perf_counter()
        import kernels

        out["import_kernels"] = time.perf_counter() - t
        out["torch_imported"] = "torch" in sys.modules
    else:
        out["torch"] = _import_torch()
        if getattr(args, "barrier", None) is not None:
            (args.barrier / f"ready-{os.getpid()}").touch()
            while not (args.barrier / "go").exists():
                time.sleep(0.002)
        t = time.perf_counter()
        if args.cmd == "get-kernel":
            import kernels

            kw = {"version": args.version} if args.version is not None else {}
            if args.revision:
                kw["revision"] = args.revision
            module = kernels.get_kernel(args.repo, **kw)
        elif args.cmd == "import-folder":
            meta = json.loads((args.dir / "metadata.json").read_text(encoding="utf-8"))
            spec = importlib.util.spec_from_file_location(
                meta["id"], args.dir / "__init__.py", submodule_search_locations=[str(args.dir)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[meta["id"]] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(args.name).activation
        out["load"] = time.perf_counter() - t
        _check(module)
    out["total"] = time.perf_counter() - T0
    # Peak resident memory of the process (Linux reports KiB), to see that it stays flat.
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
