"""The Poetry adapter: poetry-plugin-kernels (real `poetry` 2.5.1) and the poetry-kernels-backend wrapper.

End to end against the session's local Hub: ``poetry kernels add``, ``poetry lock``, ``poetry install``,
``poetry run`` loading the kernel offline, ``poetry build`` and a ``pip install`` of that wheel into a
fresh venv; stale locks, ``--dry-run`` and failures; the wrapper backend under ``pip wheel``,
``uv build`` (sdist, then wheel from the sdist) and editable installs.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from envs import (
    CACHE,
    CORE_VERSION,
    ROOT,
    UV_CACHE,
    env_without_venv,
    install_local,
    local_wheels,
    project_venv,
    run,
    tool_venv,
    uv_bin,
)
from guides import DIST, Guide
from kernelhub import publish, unique_repo, universal_rmsnorm

EXAMPLE = ROOT / "examples" / "projects" / "poetry"
BACKEND_DIR = ROOT / "plugins" / "poetry" / "backend"
POETRY = ["poetry==2.5.1"]
SAMPLE_REPO = "kernels-community/rmsnorm"
PLUGIN = "poetry-plugin-kernels"
CORE_PATH_DEP = '{ path = "../../../core", develop = false }'
LOCKEMBED_PATH_DEP = '{ path = "../../../plugins/lockembed", develop = false }'
BACKEND_REQ = 'requires = ["poetry-kernels-backend>=0.18"]'
FAKE_LOCK = '{"format": "test", "kernels": {}}\n'
# The registry reachable here serves PyPI's simple index but not its JSON API, which poetry's
# built-in PyPI source needs; a simple-index source (the same packages) works.
SIMPLE_SOURCE = """
[[tool.poetry.source]]
name = "pypi-simple"
url = "https://pypi.org/simple/"
priority = "primary"
"""


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repo's core and plugin wheels, the wrapper backend included."""
    return local_wheels(tmp_path_factory.mktemp("wheels"))


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


@pytest.fixture(scope="module")
def poetry_bin(wheels: Path) -> Path:
    """The real poetry with our core and plugin installed into its venv."""
    bin_dir = tool_venv("poetry", POETRY)
    install_local(bin_dir, wheels, "kernels", "poetry-plugin-kernels")
    return bin_dir / "poetry"


def tool_env(tmp_path: Path, wheels: Path) -> dict[str, str]:
    """Environment for poetry/pip/uv: config in tmp, a reusable download cache, local find-links."""
    env = env_without_venv()
    env.update(
        POETRY_CONFIG_DIR=str(tmp_path / "poetry-config"),
        POETRY_DATA_DIR=str(tmp_path / "poetry-data"),
        POETRY_CACHE_DIR=str(CACHE / "poetry-cache"),
        POETRY_VIRTUALENVS_IN_PROJECT="true",
        POETRY_NO_INTERACTION="1",
        PIP_FIND_LINKS=" ".join(filter(None, [str(wheels), env.get("PIP_FIND_LINKS")])),
        UV_FIND_LINKS=str(wheels),
        UV_CACHE_DIR=str(UV_CACHE),
        NO_COLOR="1",
    )
    return env


def make_project(dest: Path, wheels: Path, repo: str, *, backend_by_url: bool = True) -> Path:
    """A copy of the example project: our core wheel by path, the kernel repo renamed, a venv that
    sees the shared torch in ``.venv`` (poetry uses it: virtualenvs.in-project)."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".venv", "dist", "*.lock"))
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    assert CORE_PATH_DEP in text and LOCKEMBED_PATH_DEP in text and BACKEND_REQ in text
    core_wheel = _one(wheels, "kernels-*.whl")
    lockembed = _one(wheels, "kernels_lockembed-*.whl")
    text = text.replace(CORE_PATH_DEP, f'{{ path = "{core_wheel}" }}')
    text = text.replace(LOCKEMBED_PATH_DEP, f'{{ path = "{lockembed}" }}')
    if backend_by_url:
        # poetry's isolated build resolves build requirements from its own sources (PyPI), which
        # cannot see a find-links folder: name the local wheels (the backend and its dependency).
        backend = _one(wheels, "poetry_kernels_backend-*.whl")
        text = text.replace(
            BACKEND_REQ,
            f'requires = ["poetry-kernels-backend @ {backend.as_uri()}", '
            f'"kernels-lockembed @ {lockembed.as_uri()}"]',
        )
    pyproject.write_text(text + SIMPLE_SOURCE)
    init = dest / "src" / "poetry_kernels_sample" / "__init__.py"
    init.write_text(init.read_text().replace(SAMPLE_REPO, repo))
    return dest


def poetry(
    bin_path: Path, proj: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``poetry ARGS`` in ``proj``; with ``ok`` fail the test (showing output) on non-zero."""
    out = subprocess.run(
        [str(bin_path), *args], cwd=proj, env=env, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert out.returncode == 0, f"poetry {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out


def record_ok(names: list[str], read: object, dist_info: str) -> dict[str, list[str]]:
    """Parse RECORD, check every hashed row against the bytes; return rows by path."""
    rows = {
        r[0]: r
        for r in csv.reader(io.StringIO(read(f"{dist_info}/RECORD").decode()))  # type: ignore[operator]
        if r
    }
    for name, (_, digest, size) in ((n, rows[n]) for n in names):
        data = read(name)  # type: ignore[operator]
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={want}" and size == str(len(data)), rows[name]
    return rows


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert len(names) == len(set(names)), f"duplicate entries in {wheel.name}"
        return {n: zf.read(n) for n in names}


def check_wheel_carries(wheel: Path, lock_text: str, top: str) -> None:
    files = wheel_files(wheel)
    dist_info = next(n.split("/")[0] for n in files if n.endswith(".dist-info/METADATA"))
    assert files[f"{dist_info}/kernels.lock"].decode() == lock_text
    assert files[f"{dist_info}/top_level.txt"].decode().split() == [top]
    record_ok(
        [f"{dist_info}/kernels.lock", f"{dist_info}/top_level.txt"], files.__getitem__, dist_info
    )


def sdist_lock(sdist: Path) -> str | None:
    with tarfile.open(sdist) as tf:
        for m in tf.getmembers():
            if m.name.count("/") == 1 and m.name.endswith("/kernels.lock"):
                return tf.extractfile(m).read().decode()  # type: ignore[union-attr]
    return None


PROBE = textwrap.dedent(
    """\
    import json, torch, kernels
    from pathlib import Path
    from kernels.distmeta import Caller, lock_for_caller
    import poetry_kernels_sample as s
    found = lock_for_caller(Caller("poetry_kernels_sample", Path(s.__file__).resolve()))
    y = s.normalize(torch.ones(2, 4))
    print(json.dumps({"core": kernels.__version__, "kernel": s.rmsnorm.__version__,
                      "where": found.where, "ok": bool(torch.allclose(y, torch.ones(2, 4)))}))
    """
)


def probe(python: Path, env: dict[str, str], cwd: Path, code: str = PROBE) -> dict[str, object]:
    """Import the sample package offline in ``python``; what it loaded and where its lock came from."""
    out = subprocess.run(
        [str(python), "-c", code],
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    data: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def error_lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("Error:")]


# ---- unit: pyproject editing (no poetry needed) -------------------------------------------------


@pytest.fixture
def edit():  # type: ignore[no-untyped-def]
    """The core's pyproject editing, which `poetry kernels add` uses."""
    from kernels import edit

    return edit


def test_add_spec_parsing(edit) -> None:  # type: ignore[no-untyped-def]
    """ORG/NAME@SPEC: digits are a version branch, operators a specifier, anything else a revision."""
    from kernels.errors import ConfigError

    assert edit.parse_requirement("org/a@1") == ("org/a", 1)
    assert edit.parse_requirement("org/a@>=0.1,<0.2") == ("org/a", ">=0.1,<0.2")
    assert edit.parse_requirement("org/a@0.3.0") == ("org/a", "0.3.0")
    assert edit.parse_requirement("org/a", revision="main") == ("org/a", {"revision": "main"})
    assert edit.parse_requirement("org/a") == ("org/a", None)
    for bad in ("org/a@", "not a repo@1", "org/a@>=oops"):
        with pytest.raises(ConfigError):
            edit.parse_requirement(bad)
    with pytest.raises(ConfigError, match="use --revision"):
        edit.parse_requirement("org/a@main")
    with pytest.raises(ConfigError, match="not both"):
        edit.parse_requirement("org/a@1", revision="main")


def test_add_keeps_formatting(edit) -> None:  # type: ignore[no-untyped-def]
    """tomlkit edit: comments, order and quoting elsewhere in the file survive byte for byte."""
    before = textwrap.dedent(
        """\
        # top comment
        [project]
        name = "x"   # trailing comment
        version = "0.1.0"

        [tool.kernels.dependencies]
        "org/old" = ">=0.1"  # keep me

        [tool.poetry]
        packages = [ { include = "x" } ]
        """
    )
    after = edit.set_dependencies(before, [("org/new", 2), ("org/rev", {"revision": "main"})])
    assert after.startswith(before.split("[tool.poetry]")[0].rstrip("\n"))
    assert '"org/new" = 2' in after and '"org/rev" = {revision = "main"}' in after
    assert '[tool.poetry]\npackages = [ { include = "x" } ]\n' in after
    # A file without [tool.kernels] gets exactly one new table at the end.
    plain = '[project]\nname = "x"\n'
    out = edit.set_dependencies(plain, [("org/a", 1)])
    assert out == plain + '\n[tool.kernels.dependencies]\n"org/a" = 1\n'


# ---- the wrapper backend without poetry ---------------------------------------------------------


@pytest.mark.slow
def test_wrapper_backend_pip_uv_editable(wheels: Path, tmp_path: Path) -> None:
    """`pip wheel` (find-links, the documented name requirement), `uv build` (sdist, then a wheel
    built from that sdist) and an editable pip install all carry kernels.lock + top_level.txt with
    RECORD rows; without a lock the build fails with one `error:` line."""
    env = tool_env(tmp_path, wheels)
    proj = make_project(tmp_path / "proj", wheels, "org/x", backend_by_url=False)
    # The backend only checks that the lock is JSON: a real one is not needed here.
    text = (proj / "pyproject.toml").read_text() + '\n[tool.kernels.dependencies]\n"org/x" = 1\n'
    (proj / "pyproject.toml").write_text(text)
    (proj / "kernels.lock").write_text(FAKE_LOCK)

    pip_out = tmp_path / "pip-out"
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(pip_out), str(proj)],
        env=env,
    )
    check_wheel_carries(_one(pip_out, "*.whl"), FAKE_LOCK, "poetry_kernels_sample")

    uv = uv_bin()
    uv_out = tmp_path / "uv-out"
    run([str(uv), "build", "-q", "-o", str(uv_out), str(proj)], env=env)
    assert sdist_lock(_one(uv_out, "*.tar.gz")) == FAKE_LOCK
    check_wheel_carries(_one(uv_out, "*.whl"), FAKE_LOCK, "poetry_kernels_sample")

    # Editable: prepare_metadata_for_build_editable + build_editable (pip records direct_url.json).
    venv = project_venv(tmp_path / "ed", torch=False)
    run([str(venv), "-m", "pip", "install", "-q", "--no-deps", "-e", str(proj)], env=env)
    code = (
        "from importlib.metadata import distribution as d; x = d('poetry-kernels-sample'); "
        "print(x.read_text('kernels.lock') == open('kernels.lock').read(), "
        "x.read_text('top_level.txt').split())"
    )
    assert run([str(venv), "-c", code], env=env, cwd=proj).stdout.split() == [
        "True",
        "['poetry_kernels_sample']",
    ]

    (proj / "kernels.lock").unlink()
    out = subprocess.run(
        [str(uv), "build", "--wheel", "-o", str(tmp_path / "fail"), str(proj)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert any("kernels.lock is missing" in line for line in errors), out.stderr
    assert "Traceback" not in out.stderr


# ---- poetry end to end --------------------------------------------------------------------------


@pytest.fixture
def published(hub) -> str:  # type: ignore[no-untyped-def]
    repo = unique_repo("poetry")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    return repo


GUIDE_PROBE = PROBE.replace("poetry_kernels_sample", "my_package")


@pytest.mark.slow
def test_poetry_add_lock_install_run_build(  # type: ignore[no-untyped-def]
    poetry_bin: Path, wheels: Path, published: str, tmp_path: Path, hub
) -> None:
    """docs/integrations/poetry.md as written: its marked blocks in order (both wheels in one
    `poetry self add`, the whole pyproject.toml, `poetry install`, an offline run, `poetry kernels
    add` of two kernels, `outdated`, `remove`, `poetry build`). Then: the lock is embedded in the
    editable install's dist-info with RECORD rows, `poetry run` loads offline from the live lock, the
    built wheel and sdist carry it, and a fresh venv loads the wheel offline.

    The project's `.venv` (which Poetry uses) is made with the shared CPU torch, the guide's second
    way; the registry here lacks PyPI's JSON API, so a simple-index source is appended."""
    more = {}
    for name in ("kernels-community/activation", "kernels-community/layer-norm"):
        more[name] = unique_repo("poetry-more")
        publish(hub.endpoint, more[name], [universal_rmsnorm("0.1.0")])
    env = tool_env(tmp_path, wheels)
    env["PATH"] = f"{poetry_bin.parent}:{env['PATH']}"
    guide = Guide("poetry.md", tmp_path, env, {DIST: str(wheels), SAMPLE_REPO: published, **more})

    def uninstall_plugin(g: Guide) -> None:
        # So that the guide's `poetry self add` really installs it (from this session's wheels).
        run([str(poetry_bin.parent / "python"), "-m", "pip", "uninstall", "-q", "-y", PLUGIN])

    def prepare(g: Guide) -> None:
        project_venv(g.here() / ".venv")
        with (g.here() / "pyproject.toml").open("a") as f:
            f.write(SIMPLE_SOURCE)

    try:
        guide.run({"self-add": uninstall_plugin, "install": prepare})
    except BaseException:
        install_local(poetry_bin.parent, wheels, "kernels", PLUGIN)  # for the tests that follow
        raise
    proj = tmp_path / "my-package"
    python = proj / ".venv" / "bin" / "python"
    out = guide.outputs
    assert "Locking kernels" in out["install"] and "Downloading locked kernels" in out["install"]
    assert "downloaded 1/1 locked kernel(s)" in out["install"], out["install"]
    assert "tensor([[1.0000, 1.0000, 1.0000, 1.0000]," in out["install"], out["install"]
    assert out["more"].count("Using ") == 2 and out["more"].count("Removed ") == 2, out["more"]
    assert len([ln for ln in out["more"].splitlines() if ln.endswith("up to date")]) == 3
    lock_text = (proj / "kernels.lock").read_text()
    assert list(json.loads(lock_text)["kernels"]) == [published]

    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    dist_info = _one(site, "my_package-0.1.0.dist-info")
    assert (dist_info / "kernels.lock").read_text() == lock_text
    assert (dist_info / "top_level.txt").read_text().split() == ["my_package"]
    rows = record_ok(
        [f"{dist_info.name}/kernels.lock", f"{dist_info.name}/top_level.txt"],
        lambda n: (site / n).read_bytes(),
        dist_info.name,
    )
    assert f"{dist_info.name}/kernels.lock" in rows

    run_out = poetry(
        poetry_bin, proj, {**env, "HF_HUB_OFFLINE": "1"}, "run", "python", "-c", GUIDE_PROBE
    )
    got = json.loads(run_out.stdout.strip().splitlines()[-1])
    # The editable install runs the source tree, so load_kernel reads the live kernels.lock there
    # (the embedded copy is checked above).
    assert got == {
        "core": CORE_VERSION,
        "kernel": "0.1.0",
        "where": str(proj / "kernels.lock"),
        "ok": True,
    }

    wheel = _one(proj / "dist", "*.whl")
    check_wheel_carries(wheel, lock_text, "my_package")
    assert sdist_lock(_one(proj / "dist", "*.tar.gz")) == lock_text
    requires = [
        line
        for line in wheel_files(wheel)["my_package-0.1.0.dist-info/METADATA"].decode().splitlines()
        if line.startswith("Requires-Dist")
    ]
    # [project] dependencies, not the path source of [tool.poetry.dependencies], reach the wheel.
    assert len(requires) == 1 and requires[0].replace(" ", "").replace("(", "").replace(
        ")", ""
    ) == ("Requires-Dist:kernels>=0.18"), requires

    fresh = project_venv(tmp_path / "fresh")
    run([str(fresh), "-m", "pip", "install", "-q", str(wheel)], env=env)
    got = probe(fresh, env, tmp_path, GUIDE_PROBE)
    assert got["core"] == CORE_VERSION and got["ok"] is True
    assert got["where"] == "kernels.lock of the installed distribution my-package"


@pytest.mark.slow
def test_poetry_stale_dry_run_and_errors(  # type: ignore[no-untyped-def]
    poetry_bin: Path, wheels: Path, published: str, tmp_path: Path, hub
) -> None:
    """A stale kernels.lock stops `poetry install` and `poetry build` (one error line, exit 1) and is
    refreshed by `poetry lock`; `--dry-run` and a failed `poetry add` download nothing; bad input is
    one line, non-zero, pyproject.toml unchanged."""
    env = tool_env(tmp_path, wheels)
    proj = make_project(tmp_path / "proj", wheels, published)
    project_venv(proj / ".venv")
    pyproject = proj / "pyproject.toml"

    before = pyproject.read_text()
    out = poetry(poetry_bin, proj, env, "kernels", "add", "kernels-test/does-not-exist@1", ok=False)
    assert out.returncode == 1 and len(error_lines(out)) == 1, out.stderr
    assert "pyproject.toml left unchanged" in error_lines(out)[0]
    assert pyproject.read_text() == before and not (proj / "kernels.lock").exists()

    out = poetry(poetry_bin, proj, env, "kernels", "add", "not a repo", ok=False)
    assert out.returncode == 1 and len(error_lines(out)) == 1, out.stderr

    # Declared but never locked: `poetry kernels check` fails; `poetry lock` creates kernels.lock.
    pyproject.write_text(before + f'\n[tool.kernels.dependencies]\n"{published}" = 1\n')
    out = poetry(poetry_bin, proj, env, "kernels", "check", ok=False)
    assert out.returncode == 1 and "is missing" in error_lines(out)[0], out.stderr
    poetry(poetry_bin, proj, env, "lock")
    first = (proj / "kernels.lock").read_text()
    poetry(poetry_bin, proj, env, "kernels", "lock", "--check")

    # Change the spec: now stale. install/build refuse before doing anything.
    pyproject.write_text(
        pyproject.read_text().replace(f'"{published}" = 1', f'"{published}" = ">=0.1"')
    )
    for args in (["install"], ["build"]):
        out = poetry(poetry_bin, proj, env, *args, ok=False)
        assert out.returncode == 1, out.stdout + out.stderr
        (line,) = error_lines(out)
        assert "kernels.lock is out of date" in line and "poetry lock" in line, line
    assert not (proj / "dist").exists()
    out = poetry(poetry_bin, proj, env, "kernels", "lock", "--check", ok=False)
    assert out.returncode == 1

    out = poetry(poetry_bin, proj, env, "lock")
    assert "Updating kernels.lock" in out.stdout
    assert (proj / "kernels.lock").read_text() != first
    poetry(poetry_bin, proj, env, "kernels", "check")

    hub.reset_requests()
    poetry(poetry_bin, proj, env, "install", "--dry-run")
    out = poetry(poetry_bin, proj, env, "add", "no-such-package-kernels-test-xyz", ok=False)
    assert out.returncode != 0 and "Downloading locked kernels" not in out.stdout
    assert not [r for r in hub.requests() if published in r.path]
    assert not list((proj / ".venv").glob("lib/*/site-packages/poetry_kernels_sample-*.dist-info"))

    # A failed download (Hub gone for this repo: an empty HF cache and offline) is one line, exit 1.
    out = poetry(poetry_bin, proj, {**env, "HF_HUB_OFFLINE": "1"}, "kernels", "download", ok=False)
    assert out.returncode == 1 and len(error_lines(out)) == 1, out.stdout + out.stderr


@pytest.mark.slow
def test_poetry_per_project_plugin(  # type: ignore[no-untyped-def]
    wheels: Path, published: str, tmp_path: Path
) -> None:
    """`[tool.poetry.requires-plugins]` with a poetry that has no global plugin: the first
    `poetry install` installs the plugin into the project's .poetry/plugins; from the next command on
    it is active (the second install locks, downloads and embeds)."""
    bare = tool_venv("poetry-bare", POETRY) / "poetry"
    env = tool_env(tmp_path, wheels)
    proj = make_project(tmp_path / "proj", wheels, published)
    python = project_venv(proj / ".venv")
    pyproject = proj / "pyproject.toml"
    plugin_wheel = _one(wheels, "poetry_plugin_kernels-*.whl")
    # The plugin and what of ours it depends on, none of it on an index.
    ours = {
        name: _one(wheels, f"{name.replace('-', '_')}-*.whl")
        for name in ("kernels", "kernels-lockembed", "poetry-kernels-backend")
    }
    text = pyproject.read_text().replace(
        'poetry-plugin-kernels = ">=0.18"',
        f'poetry-plugin-kernels = {{ path = "{plugin_wheel}" }}\n'
        + "".join(f'{name} = {{ path = "{wheel}" }}\n' for name, wheel in ours.items()),
    )
    pyproject.write_text(text + f'\n[tool.kernels.dependencies]\n"{published}" = 1\n')

    first = poetry(bare, proj, env, "install")
    assert "Installing Poetry plugins only for the current project" in first.stdout, first.stdout
    assert list((proj / ".poetry" / "plugins").glob("poetry_plugin_kernels-*.dist-info"))
    assert "Downloading locked kernels" not in first.stdout  # not loaded yet in that process

    second = poetry(bare, proj, env, "install")
    assert "Locking kernels" in second.stdout and "Downloading locked kernels" in second.stdout
    assert (proj / "kernels.lock").exists()
    got = probe(python, env, tmp_path)
    assert got["ok"] is True and got["where"] == str(proj / "kernels.lock")
