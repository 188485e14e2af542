"""This repository's distributions as contributors and users install them.

- one copy of each module: no file is shared by two distributions, and no build hook copies code
  in at build time (the lock-embedding code lives once, in ``kernels-lockembed``);
- the modules that run inside isolated build environments import only the standard library, their
  build backend and ``kernels_lockembed``, never the ``kernels`` core (an index may offer another
  release of it there), and each distribution declares what it imports;
- every distribution installs editable (``pip install -e``) and regular, and builds its sdist and,
  from that sdist alone, its wheel.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from envs import (
    ROOT,
    distributions,
    env_without_venv,
    local_wheels,
    project_venv,
    run,
    uv_bin,
    uv_env,
)
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# Top-level packages each distribution ships (its wheel's only top-level folders).
PACKAGES = {
    "kernels": ["kernels"],
    "kernels-lockembed": ["kernels_lockembed"],
    "hatch-kernels": ["hatch_kernels"],
    "pdm-kernels": ["pdm_kernels"],
    "poetry-plugin-kernels": ["poetry_plugin_kernels"],
    "poetry-kernels-backend": ["poetry_kernels_backend"],
}

# Modules that run inside isolated build environments, and the non-stdlib top-level names each may
# import there (besides its own package).
BUILD_TIME = {
    "plugins/lockembed/src/kernels_lockembed/__init__.py": {"tomli"},
    "plugins/hatch/src/hatch_kernels/__init__.py": set(),
    "plugins/hatch/src/hatch_kernels/hooks.py": {"hatchling"},
    "plugins/hatch/src/hatch_kernels/build.py": {"hatchling", "kernels_lockembed"},
    "plugins/pdm/src/pdm_kernels/__init__.py": set(),
    "plugins/pdm/src/pdm_kernels/build_hook.py": {"kernels_lockembed"},
    "plugins/poetry/backend/src/poetry_kernels_backend/__init__.py": {
        "poetry",
        "kernels_lockembed",
    },
    "core/src/kernels/setuptools_hook.py": {"kernels_lockembed"},
}


def _project(folder: Path) -> dict[str, object]:
    with open(folder / "pyproject.toml", "rb") as f:
        data: dict[str, object] = tomllib.load(f)["project"]
    return data


def _imported_tops(path: Path) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            tops.add(node.module.split(".")[0])
    return tops


def _sources() -> dict[Path, list[Path]]:
    """Every distribution folder and the Python files of its own packages."""
    out: dict[Path, list[Path]] = {}
    for folder in distributions():
        name = str(_project(folder)["name"])
        out[folder] = sorted(
            p for pkg in PACKAGES[name] for p in (folder / "src" / pkg).rglob("*.py")
        )
    return out


def test_the_distributions_are_the_known_ones() -> None:
    """Each distribution folder is listed here with its packages (the checks below cover it)."""
    names = sorted(str(_project(folder)["name"]) for folder in distributions())
    assert names == sorted(PACKAGES)


def test_no_module_is_copied_between_distributions() -> None:
    """No two source files have the same bytes, none is named after the old vendored copy, and no
    distribution has a custom hatchling hook (the hooks existed only to copy files in)."""
    seen: dict[str, Path] = {}
    for folder, files in _sources().items():
        assert files, folder
        for path in files:
            assert path.name != "_lockembed.py", path
            data = path.read_bytes()
            if not data.strip():
                continue  # empty __init__.py files are alike by nature
            digest = hashlib.sha256(data).hexdigest()
            assert digest not in seen, f"{path} is a copy of {seen[digest]}"
            seen[digest] = path
        assert not (folder / "hatch_build.py").exists(), folder
        with open(folder / "pyproject.toml", "rb") as f:
            hooks = (
                tomllib.load(f).get("tool", {}).get("hatch", {}).get("build", {}).get("hooks", {})
            )
        assert "custom" not in hooks, folder


@pytest.mark.parametrize("module", sorted(BUILD_TIME))
def test_build_time_modules_import_nothing_of_the_core(module: str) -> None:
    """A module loaded in an isolated build environment imports only the stdlib and its allowance."""
    path = ROOT / module
    own = path.relative_to(ROOT).parts[path.relative_to(ROOT).parts.index("src") + 1]
    extra = _imported_tops(path) - set(sys.stdlib_module_names) - {own, "__future__"}
    assert extra <= BUILD_TIME[module], f"{module} imports {sorted(extra - BUILD_TIME[module])}"
    if own != "kernels":
        assert "kernels" not in _imported_tops(path)


def test_each_distribution_declares_the_lockembed_it_imports() -> None:
    """A distribution whose code imports ``kernels_lockembed`` depends on ``kernels-lockembed``,
    compatible with this release; ``kernels-lockembed`` depends on nothing but tomli (Python 3.10)."""
    for folder, files in _sources().items():
        project = _project(folder)
        deps = [str(d) for d in project.get("dependencies", [])]  # type: ignore[attr-defined]
        if project["name"] == "kernels-lockembed":
            assert all(d.startswith("tomli") for d in deps), deps
            continue
        if any("kernels_lockembed" in _imported_tops(p) for p in files):
            assert f"kernels-lockembed~={project['version']}" in deps, (folder, deps)


@pytest.mark.slow
def test_every_distribution_installs_editable(tmp_path: Path) -> None:
    """``pip install -e`` of every distribution into one fresh venv (dependencies from the index):
    each package then imports from the source tree, and each entry point resolves into it."""
    venv = project_venv(tmp_path / "venv", torch=False)
    # The third-party dependencies first, with uv (poetry alone is dozens of packages: pip would
    # spend most of the test installing them); pip then resolves and builds ours.
    third_party = sorted(
        {
            str(dep)
            for folder in distributions()
            for dep in _project(folder).get("dependencies", [])  # type: ignore[attr-defined]
            if Requirement(str(dep)).name not in PACKAGES
        }
    )
    run([str(uv_bin()), "pip", "install", "-q", "--python", str(venv), *third_party], env=uv_env())
    editable = [arg for folder in distributions() for arg in ("-e", str(folder))]
    run([str(venv), "-m", "pip", "install", "-q", *editable], env=env_without_venv())
    code = """
import importlib, importlib.util, json, sys
from importlib.metadata import distribution, entry_points
out = {}
for name, packages in json.loads(sys.argv[1]).items():
    dist = distribution(name)
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    files = [importlib.import_module(p).__file__ for p in packages]
    out[name] = {"editable": direct.get("dir_info", {}).get("editable", False), "files": files}
groups = ["console_scripts", "hatch", "pdm", "pdm.build.hook", "poetry.application.plugin",
          "egg_info.writers", "setuptools.file_finders"]
eps = [ep for g in groups for ep in entry_points(group=g) if ep.dist.name in out]
# Where each entry point's module is, without importing it (the plugins' need pdm or poetry).
out["entry points"] = {f"{ep.group}:{ep.name}": importlib.util.find_spec(ep.module).origin
                       for ep in eps}
print(json.dumps(out))
"""
    got = json.loads(run([str(venv), "-c", code, json.dumps(PACKAGES)]).stdout)
    for name in PACKAGES:
        assert got[name]["editable"] is True, name
        for file in got[name]["files"]:
            assert Path(file).resolve().is_relative_to(ROOT), (name, file)
    eps = got["entry points"]
    for key in (
        "console_scripts:kernels",
        "hatch:kernels",
        "pdm:kernels",
        "pdm.build.hook:kernels",
        "poetry.application.plugin:kernels",
        "egg_info.writers:kernels.lock",
    ):
        assert key in eps, (key, eps)
    assert all(Path(f).resolve().is_relative_to(ROOT) for f in eps.values()), eps


@pytest.mark.slow
def test_every_distribution_builds_sdist_then_wheel_alone(tmp_path: Path) -> None:
    """``uv build`` of each distribution: the sdist holds no file from outside its folder, and the
    wheel built from that sdist alone has the same files as the one ``pip wheel`` builds from the
    tree (what the other tests install), none of them a copy of another distribution's module."""
    uv = uv_bin()
    wheels = local_wheels(tmp_path / "local-wheels")
    env = uv_env()
    for folder in distributions():
        name = str(_project(folder)["name"])
        out = tmp_path / name
        run([str(uv), "build", "-q", "-o", str(out), str(folder)], env=env)
        (sdist,) = out.glob("*.tar.gz")
        (wheel,) = out.glob("*.whl")
        with tarfile.open(sdist) as tf:
            members = [m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name]
        assert not [m for m in members if m.startswith(("backend/", "core/", "..", "plugins/"))]
        (from_tree,) = wheels.glob(f"{name.replace('-', '_')}-*.whl")
        with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(from_tree) as b:
            names = sorted(a.namelist())
            assert names == sorted(b.namelist()), name
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == set(PACKAGES[name]), (name, tops)
        assert not [n for n in names if n.endswith("/_lockembed.py")], name


def test_build_hook_loads_with_no_core_and_no_pdm(tmp_path: Path) -> None:
    """pdm-kernels' build hook module loads from its wheel and kernels-lockembed's alone."""
    wheels = local_wheels(tmp_path / "local-wheels")
    (pdm_wheel,) = wheels.glob("pdm_kernels-*.whl")
    (lockembed,) = wheels.glob("kernels_lockembed-*.whl")
    code = (
        f"import sys; sys.path[:0] = [{str(pdm_wheel)!r}, {str(lockembed)!r}]; "
        "sys.modules['kernels'] = None; sys.modules['pdm'] = None; "
        "import pdm_kernels.build_hook as h; print(h.pdm_build_update_files.__name__)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "pdm_build_update_files" in out.stdout, out.stderr
