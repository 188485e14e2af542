"""MkDocs hooks of this site (listed under ``hooks:`` in ``mkdocs.yml``; excluded from the pages).

- The "Package managers" navigation section lists every page under ``docs/integrations/``, in a
  fixed order for the known tools, so a new integration page needs no edit of ``mkdocs.yml``.
- Sphinx roles in docstrings (``:class:`~kernels.errors.KernelsError```), which mkdocstrings
  renders as literal text, are shown as plain code (``KernelsError``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

INTEGRATIONS_DIR = "integrations"
# The navigation entry (in mkdocs.yml) that is replaced with the integration pages.
INTEGRATIONS_PLACEHOLDER = "integrations/"
# Order of the integration pages; pages not named here follow, alphabetically.
INTEGRATIONS_ORDER = ("pdm", "poetry", "hatch", "uv", "setuptools", "pdm-backend", "poetry-core")

# mkdocstrings turns the role's backticks into <code>: ":class:<code>~kernels.errors.X</code>".
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>(~?)([^<]+)</code>")


def integration_pages(docs_dir: Path) -> list[str]:
    """The pages under ``docs/integrations/``, known tools first in their fixed order."""
    folder = docs_dir / INTEGRATIONS_DIR
    stems = [p.stem for p in folder.glob("*.md")] if folder.is_dir() else []

    def key(stem: str) -> tuple[int, str]:
        norm = stem.replace("_", "-").lower()
        known = norm in INTEGRATIONS_ORDER
        return (INTEGRATIONS_ORDER.index(norm) if known else len(INTEGRATIONS_ORDER), norm)

    return [f"{INTEGRATIONS_DIR}/{s}.md" for s in sorted(stems, key=key)]


def _expand(items: list[Any], pages: list[str]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            expanded = {}
            for title, value in item.items():
                if value == INTEGRATIONS_PLACEHOLDER:
                    value = pages
                elif isinstance(value, list):
                    value = _expand(value, pages)
                expanded[title] = value
            item = expanded
        out.append(item)
    return out


def on_config(config: Any) -> Any:
    """Replace the ``integrations/`` navigation entry with the integration pages found."""
    if config.get("nav"):
        config["nav"] = _expand(config["nav"], integration_pages(Path(config["docs_dir"])))
    return config


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Show Sphinx cross-reference roles left in rendered docstrings as plain code."""

    def plain(m: re.Match[str]) -> str:
        target = m[2].rsplit(".", 1)[-1] if m[1] else m[2]
        return f"<code>{target}</code>"

    return _ROLE.sub(plain, html)
