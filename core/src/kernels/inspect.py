"""``kernels versions`` and ``kernels info``: what a kernel repo offers, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from kernels.hub import list_refs
from kernels.resolve import tag_versions


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def versions(repo_id: str) -> dict[str, Any]:
    """Versions a repo offers: ``v<version>`` tags (newest first) and ``vN`` branches (one request)."""
    from kernels.cache import RepoCache
    from kernels.hub import validate_repo_id

    validate_repo_id(repo_id)
    refs, repo_type = list_refs(repo_id)
    RepoCache(repo_id, repo_type).save_refs(refs)
    tags = tag_versions(refs)
    branches = sorted(
        (b for b in refs.branches if b[:1] == "v" and b[1:].isdigit()), key=lambda b: int(b[1:])
    )
    return {
        "repo_id": repo_id,
        "versions": [
            {"version": str(v), "tag": tags[v][0], "commit": tags[v][1]}
            for v in sorted(tags, reverse=True)
        ],
        "branches": [
            {"branch": b, "version": int(b[1:]), "commit": refs.branches[b]} for b in branches
        ],
    }


def versions_command(repo_id: str, *, as_json: bool) -> int:
    """Print :func:`versions` as a table or JSON; exit 0."""
    data = versions(repo_id)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    rows = [
        [v["version"], v["tag"], v["commit"][:12], f'version="=={v["version"]}"']
        for v in data["versions"]
    ]
    rows += [
        [str(b["version"]), b["branch"], b["commit"][:12], f"version={b['version']}"]
        for b in data["branches"]
    ]
    print(
        _table(rows, ["version", "ref", "commit", "use with get_kernel"])
        if rows
        else f"{repo_id} has no version tags or vN branches"
    )
    return 0


def info(repo_id: str, *, revision: str | None = None) -> dict[str, Any]:
    """A repo's build variants at ``revision`` with this interpreter's verdict on each."""
    from kernels.loader import get_kernel_variants
    from kernels.platform import detect_platform
    from kernels.resolve import make_request, resolve

    resolved = resolve(make_request(repo_id, revision=revision), fresh=True)
    verdicts = get_kernel_variants(repo_id, revision=resolved.commit)
    plat = detect_platform()
    best = verdicts[0].name if verdicts and verdicts[0].accepted else None
    return {
        "repo_id": repo_id,
        "revision": revision or "main",
        "commit": resolved.commit,
        "interpreter": plat.variant,
        "selected": best,
        "variants": [
            {"name": v.name, "accepted": v.accepted, "reason": v.reason} for v in verdicts
        ],
    }


def info_command(repo_id: str, *, revision: str | None, as_json: bool) -> int:
    """Print :func:`info` as a table or JSON; exit 0."""
    data = info(repo_id, revision=revision)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    print(f"{repo_id} @ {data['revision']} ({data['commit']})")
    print(f"this interpreter: {data['interpreter']}; selected: {data['selected'] or 'none'}")
    rows = [
        [
            ("* " if v["name"] == data["selected"] else "  ") + v["name"],
            "yes" if v["accepted"] else "no",
            v["reason"],
        ]
        for v in data["variants"]
    ]
    print(_table(rows, ["variant", "loads", "why"]))
    return 0
