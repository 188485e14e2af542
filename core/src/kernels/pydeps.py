"""``python-depends``: the Python packages a kernel needs, checked before it is downloaded.

A kernel's ``metadata.json`` may name packages it imports (``einops``, ``nvidia-cutlass-dsl`` ...).
Only the names of an allowlist (``python_depends.json`` beside this module, the list kernel-builder
and ``kernels`` 0.17.2 know) are accepted: an unknown name is refused with
:class:`~kernels.errors.UnknownDependencyError` (a ``ValueError``), a known one whose package is not
installed with :class:`~kernels.errors.MissingDependencyError` (an ``ImportError``) that names the
``pip install`` to run. Nothing is imported to find out: ``importlib.util.find_spec`` only looks.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kernels.errors import MissingDependencyError, UnknownDependencyError

ALLOWLIST = Path(__file__).with_name("python_depends.json")


@dataclass(frozen=True)
class Package:
    """One pip distribution a ``python-depends`` name stands for."""

    pip: str
    module: str | None
    """A top-level module it installs (``None``: nothing importable, such as a library folder)."""


@cache
def allowlist() -> dict[str, dict[str, list[Package]]]:
    """``{"general": {...}, "<backend>": {...}}``: name -> packages, from ``python_depends.json``."""
    doc = json.loads(ALLOWLIST.read_text(encoding="utf-8"))

    def table(raw: dict[str, list[dict[str, str | None]]]) -> dict[str, list[Package]]:
        return {
            name: [Package(str(p["pip"]), p.get("module")) for p in pkgs]
            for name, pkgs in raw.items()
        }

    out = {"general": table(doc["general"])}
    out.update({backend: table(raw) for backend, raw in doc["backends"].items()})
    return out


def known_names(backend: str) -> list[str]:
    """The ``python-depends`` names accepted for ``backend``, sorted."""
    lists = allowlist()
    return sorted({*lists["general"], *lists.get(backend, {})})


def check_python_depends(kernel: str, depends: list[str], backend: str) -> None:
    """Refuse unknown names and report missing packages of ``depends`` for a kernel on ``backend``.

    ``kernel`` names the kernel in messages (its repo id or folder).
    """
    lists = allowlist()
    for name in depends:
        packages = lists["general"].get(name) or lists.get(backend, {}).get(name)
        if packages is None:
            raise UnknownDependencyError(
                f"kernel {kernel} declares python-depends {name!r}, which is not a supported "
                f"kernel dependency on {backend} (supported: {', '.join(known_names(backend))}); "
                "it cannot be installed for it, so the kernel is refused"
            )
        missing = [
            p.pip for p in packages if p.module and importlib.util.find_spec(p.module) is None
        ]
        if missing:
            raise MissingDependencyError(
                f"kernel {kernel} requires the Python package {', '.join(missing)} "
                f"(python-depends {name!r}), not installed in {sys.executable}; "
                f"install it with: pip install {' '.join(missing)}"
            )
