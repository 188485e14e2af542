"""The test harness: one local Hub per test session, a fresh cache per test.

The server starts in ``pytest_configure`` so that ``HF_ENDPOINT``, ``HF_HOME``, ``NO_PROXY`` and a
dummy token are in the environment before any test module imports ``huggingface_hub`` (which reads
them once, at import).

Under pytest-xdist (``scripts/test.sh`` runs ``-n 3 --dist loadfile``) every worker is a session of
its own, with its own Hub; a test file runs whole on one worker, so module fixtures are made once.
The controller starts no Hub. Builds of the example kernels are shared by the workers of one run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "kernels"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DUMMY_TOKEN = "hf_dummy_test_token_0123456789"
TRUSTED_ORGS = ("kernels-community", "kernels-test")
"""Organisations the session's Hub marks as trusted kernel publishers (tests publish there)."""
UNTRUSTED_ORG = "untrusted-org"
"""An organisation it does not trust, for the trust tests."""

_state: dict[str, object] = {}


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    from kernels.server import HubServer

    if _is_xdist_controller(config):
        return  # the workers run the tests, each with its own Hub
    workdir = Path(tempfile.mkdtemp(prefix="kernels-tests-"))
    _state["workdir"] = workdir
    server = HubServer(workdir / "hub", trusted_orgs=TRUSTED_ORGS).start()
    _state["server"] = server
    os.environ["HF_ENDPOINT"] = server.endpoint
    os.environ["HF_HOME"] = str(workdir / "hf-home")
    os.environ["HF_HUB_CACHE"] = str(workdir / "hf-home" / "hub")
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    os.environ["no_proxy"] = "127.0.0.1,localhost"
    os.environ["HF_TOKEN"] = DUMMY_TOKEN
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ.pop("HF_HUB_OFFLINE", None)
    # Builds of example kernels are cached across tests (and across runs when the caller says where),
    # and shared by the workers of one xdist run (the cache is safe for concurrent builders).
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    shared = Path(tempfile.gettempdir()) / f"kernels-tests-builds-{run_id}" if run_id else None
    os.environ.setdefault("KERNELS_BUILD_CACHE", str(shared or workdir / "build-cache"))


# Test files that take longest go first, so that a parallel run does not end waiting on one of them
# (pytest-xdist hands out whole files in collection order: see --no-loadscope-reorder in test.sh).
LONGEST_FIRST = [
    "test_pdm.py",
    "test_poetry.py",
    "test_hatch.py",
    "test_reliability.py",
    "test_uv.py",
    "test_distributions.py",
    "test_docker_reference.py",
    "test_example_build.py",
    "test_transformers.py",
    "test_layers.py",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _state.get("server")
    if server is not None:
        server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def hub():  # type: ignore[no-untyped-def]
    """The session's local Hub server (``kernels.server.HubServer``)."""
    return _state["server"]


@pytest.fixture(scope="session")
def hf_api(hub):  # type: ignore[no-untyped-def]
    """An ``HfApi`` talking to the local Hub."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.endpoint, token=DUMMY_TOKEN)


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give every test its own Hugging Face cache folder."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield cache


@pytest.fixture(autouse=True)
def fresh_layer_mapping() -> Iterator[None]:
    """Each test starts and ends with the process-wide kernel mapping it found."""
    before = sys.modules.get("kernels.layers.mapping")
    saved = getattr(before, "_process_mapping", None)
    yield
    after = sys.modules.get("kernels.layers.mapping")
    if after is not None:
        after._process_mapping = saved if saved is not None else after._EMPTY  # type: ignore[attr-defined]
