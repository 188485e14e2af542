"""The documentation site: it builds in strict mode, and the pages that state facts match the code.

The build (``mkdocs build --strict``) fails on a broken link or anchor, a page missing from the
navigation, a navigation entry without a page and an unresolved API reference (``mkdocs.yml``).
The other tests tie generated or copied facts to their source: the CLI reference to
``build_parser()``, the lock examples to the lock parser, the environment variables to the code,
the reliability table to the tests it names.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kernels.cli import build_parser
from kernels.lockfile import parse_lock

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INTEGRATIONS = ("pdm", "poetry", "hatch", "uv", "setuptools", "pdm-backend", "poetry-core")


def _subcommands() -> dict[str, object]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("build_parser() has no subcommands")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from this checkout with ``mkdocs build --strict``."""
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        pytest.fail(
            "mkdocs is not installed in this environment: "
            f"{sys.executable} -m pip install -r scripts/requirements-docs.txt"
        )
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _text(page: Path) -> str:
    """The visible text of a built page's article."""
    raw = page.read_text(encoding="utf-8")
    start, end = raw.find("<article"), raw.find("</article>")
    body = raw[start:end] if start >= 0 else raw
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def test_site_builds_strict_with_every_page(site: Path) -> None:
    pages = sorted(
        p.relative_to(DOCS).with_suffix("")
        for p in DOCS.rglob("*.md")
        if "hooks" not in p.relative_to(DOCS).parts
    )
    for rel in pages:
        built = site / ("index.html" if rel.name == "index" else rel / "index.html")
        assert built.is_file(), f"docs/{rel}.md was not built"
    # The CLI reference is committed (generated); the API page is generated at build time.
    assert (site / "cli" / "index.html").is_file()
    assert "lock_project" in _text(site / "api" / "index.html")


def test_cli_reference_lists_every_subcommand_and_option(site: Path) -> None:
    text = _text(site / "cli" / "index.html")
    subs = _subcommands()
    assert subs, "no subcommands"
    for name, sub in subs.items():
        assert f"kernels {name}" in text, f"the CLI reference misses `kernels {name}`"
        for action in sub._actions:  # type: ignore[attr-defined]
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert option in text, f"the CLI reference misses {option} of `kernels {name}`"
            if not action.option_strings:
                assert str(action.metavar or action.dest) in text


def test_committed_cli_reference_is_current() -> None:
    """docs/cli.md is what scripts/gen_cli_reference.py makes from this checkout's parser."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_integration_has_a_page_in_the_navigation(site: Path) -> None:
    found = {p.stem.replace("_", "-").lower() for p in (DOCS / "integrations").glob("*.md")}
    missing = [name for name in INTEGRATIONS if name not in found]
    assert not missing, f"docs/integrations/ has no page for {', '.join(missing)}"
    nav = (site / "index.html").read_text(encoding="utf-8")
    for page in (DOCS / "integrations").glob("*.md"):
        assert f"integrations/{page.stem}/" in nav, f"{page.name} is not in the navigation"


def _fenced(page: str, lang: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_lock_format_examples_are_what_the_code_reads_and_writes() -> None:
    ours, old, new = _fenced("lock-format.md", "json")[:3]
    lock = parse_lock(ours)
    assert lock.format == "kernels-1"
    assert lock.dumps() == ours, "the example is not byte-for-byte what `kernels lock` writes"
    assert parse_lock(old).format == "upstream-0.16"
    assert parse_lock(new).format == "upstream-0.17"
    # The example shown in the locking page's workflow is the same lock.
    assert json.loads(ours)["lock-version"] == 1


def test_environment_page_names_every_variable_the_core_reads() -> None:
    src = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "core" / "src").rglob("*.py"))
    read = set(re.findall(r"os\.environ\.get\(\s*\"([A-Z0-9_]+)\"", src))
    read |= set(re.findall(r"os\.environ\[\s*\"([A-Z0-9_]+)\"\s*\]", src))
    read |= set(re.findall(r"env_number\(\s*\"([A-Z0-9_]+)\"", src))
    assert {"HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE"} <= read
    page = (DOCS / "env.md").read_text(encoding="utf-8")
    missing = sorted(v for v in read if f"`{v}`" not in page)
    assert not missing, f"docs/env.md does not describe {', '.join(missing)}"


def test_reliability_table_names_tests_that_exist() -> None:
    page = (DOCS / "reliability.md").read_text(encoding="utf-8")
    refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert len(refs) >= 10
    for file, test in refs:
        source = (ROOT / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, flags=re.M), f"{file}::{test} does not exist"


def test_getting_started_gives_the_readme_commands() -> None:
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh" in page and "bash scripts/test.sh" in page


@pytest.mark.parametrize("page", ["pdm.md", "poetry.md", "hatch.md", "uv.md"])
def test_tool_guides_are_run_as_written_by_the_test_they_name(page: str) -> None:
    """Each package-manager guide marks its commands for a test (tests/guides.py), installs from
    the folder scripts/wheels.sh fills, and names the test that runs them, which exists and does."""
    from guides import DIST, steps

    text = (DOCS / "integrations" / page).read_text(encoding="utf-8")
    marked = steps(page)
    assert [s for s in marked if s.kind == "run"] and [s for s in marked if s.kind != "run"]
    assert "bash scripts/wheels.sh" in text and any(DIST in s.body for s in marked)
    found = re.search(r"^Tests: `(tests/\w+\.py)::(\w+)`", text, flags=re.M)
    assert found, f"docs/integrations/{page} names no test"
    source = (ROOT / found[1]).read_text(encoding="utf-8")
    body = re.search(rf"^def {found[2]}\(.*?(?=^def |^@|\Z)", source, flags=re.M | re.S)
    assert body and f'Guide("{page}"' in body[0], f"{found[1]}::{found[2]} does not run {page}"
