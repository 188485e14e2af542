#!/usr/bin/env python3
"""The CLI reference page, ``docs/cli.md``, generated from the real parser (``kernels.cli.build_parser``).

The page is committed, so that it reads (and its links work) in the repository too. Two uses:

- as a script: ``python scripts/gen_cli_reference.py`` rewrites ``docs/cli.md`` (``--check``: exit 1
  when it is out of date; ``-o -`` prints the page);
- as a MkDocs hook (``hooks:`` in ``mkdocs.yml``): every build fails while ``docs/cli.md`` differs
  from what the parser of this checkout gives, so the page cannot fall behind the code.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI_PAGE = "cli.md"
# Fixed width so that the generated usage lines do not depend on the terminal of whoever builds.
_WIDTH = "100"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_INTRO = """\
# CLI reference

This page is generated from the argument parser of the library (`kernels.cli.build_parser()`) by
`python scripts/gen_cli_reference.py`; building the documentation fails when it no longer matches
the code.

The command is installed as `kernels` and, for compatibility, as `kernel`; `python -m kernels` is
the same. Exit codes: `0` on success, `1` when the command fails (the reason is one line on stderr
starting with `error:`, never a traceback) or, for `kernels check`, when the lock is out of date,
`2` for a usage error, `130` when interrupted.
"""


def _import_parser() -> argparse.ArgumentParser:
    """``build_parser()`` of this checkout's core (not of another ``kernels`` on the path)."""
    src = str(ROOT / "core" / "src")
    if "kernels" not in sys.modules and src not in sys.path:
        sys.path.insert(0, src)
    from kernels.cli import build_parser

    parser: argparse.ArgumentParser = build_parser()
    return parser


@contextmanager
def _plain_terminal() -> Iterator[None]:
    """Fixed width, no colours: argparse reads both from the environment."""
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=_WIDTH, NO_COLOR="1", PYTHON_COLORS="0")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _md(text: str) -> str:
    """Plain text made safe for a Markdown table cell (brackets would read as links)."""
    text = " ".join(text.split())
    for ch in "\\[]*_<>|`":
        text = text.replace(ch, "\\" + ch)
    return text


def _argument_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar or action.dest.upper()
                if action.nargs == "*":
                    names += f" [{metavar} ...]"
                elif action.nargs == "?":
                    names += f" [{metavar}]"
                else:
                    names += f" {metavar}"
        else:
            names = str(action.metavar or action.dest)
            if action.nargs == "?":
                names = f"[{names}]"
        default = ""
        no_default = action.default is None or action.default is False
        if not no_default and action.default != argparse.SUPPRESS and action.nargs != 0:
            default = f"`{action.default}`"
        rows.append((f"`{names}`", _md(action.help or ""), default))
    return rows


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown of the CLI reference page for ``parser`` (default: the real one)."""
    parser = parser or _import_parser()
    with _plain_terminal():
        out = [_INTRO]
        top_usage = _ANSI.sub("", parser.format_usage()).strip()
        out.append(f"```text\n{top_usage}\n```\n")
        if parser.description:
            out.append(_md(parser.description) + "\n")
        subs = subcommands(parser)
        out.append("| Command | What it does |\n| --- | --- |")
        for name, sub in subs.items():
            out.append(
                f"| [`{parser.prog} {name}`](#{parser.prog}-{name}) | {_md(sub.description or '')} |"
            )
        out.append("")
        for name, sub in subs.items():
            # The heading's own anchor is #kernels-NAME, on the site and in the repository alike.
            out.append(f"## `{parser.prog} {name}`\n")
            if sub.description:
                out.append(_md(sub.description) + "\n")
            usage = _ANSI.sub("", sub.format_usage()).strip()
            out.append(f"```text\n{usage}\n```\n")
            rows = _argument_rows(sub)
            if rows:
                out.append("| Argument | Meaning | Default |\n| --- | --- | --- |")
                out.extend(f"| {a} | {h} | {d} |" for a, h, d in rows)
                out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---- MkDocs hook --------------------------------------------------------------------------------

STALE = (
    f"docs/{CLI_PAGE} is out of date: run `python scripts/gen_cli_reference.py` to regenerate it"
)


def on_files(files: Any, config: Any) -> Any:
    """Refuse to build while the committed ``docs/cli.md`` differs from the parser's page."""
    page = Path(config["docs_dir"]) / CLI_PAGE
    if not page.is_file() or page.read_text(encoding="utf-8") != render():
        raise SystemExit(STALE)
    return files


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``docs/cli.md`` (or ``-o FILE``, ``-o -`` to print); ``--check`` only compares."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "-o", "--output", default=str(ROOT / "docs" / CLI_PAGE), help="default: docs/cli.md"
    )
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != text:
            print(STALE, file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
