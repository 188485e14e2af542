"""``kernels versions`` and ``kernels info``: what a kernel repo offers, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from kernels.hub import list_refs
from kernels.resolve import tag_versions


def text_table(rows: list[list[str]], header: list[str]) -> str:
    """``rows`` under ``header`` in aligned columns, with a dashed rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _verdicts_json(verdicts: list[Any]) -> list[dict[str, Any]]:
    return [{"name": v.name, "accepted": v.accepted, "reason": v.reason} for v in verdicts]


def _variants_at(repo_id: str, commit: str) -> list[dict[str, Any]]:
    from kernels.loader import get_kernel_variants

    return _verdicts_json(get_kernel_variants(repo_id, revision=commit))


def versions(repo_id: str, *, with_variants: bool = True) -> dict[str, Any]:
    """Versions a repo offers: ``v<version>`` tags (newest first) and ``vN`` branches (one request),
    each with its build variants and this interpreter's verdict on each (one listing per commit)."""
    from kernels.cache import RepoCache
    from kernels.hub import validate_repo_id

    validate_repo_id(repo_id)
    refs, repo_type = list_refs(repo_id)
    RepoCache(repo_id, repo_type).save_refs(refs)
    tags = tag_versions(refs)
    branches = sorted(
        (b for b in refs.branches if b[:1] == "v" and b[1:].isdigit()), key=lambda b: int(b[1:])
    )
    data: dict[str, Any] = {
        "repo_id": repo_id,
        "versions": [
            {"version": str(v), "tag": tags[v][0], "commit": tags[v][1]}
            for v in sorted(tags, reverse=True)
        ],
        "branches": [
            {"branch": b, "version": int(b[1:]), "commit": refs.branches[b]} for b in branches
        ],
    }
    if with_variants:
        seen: dict[str, list[dict[str, Any]]] = {}
        for entry in [*data["versions"], *data["branches"]]:
            commit = entry["commit"]
            if commit not in seen:
                seen[commit] = _variants_at(repo_id, commit)
            entry["variants"] = seen[commit]
    return data


def _variant_lines(variants: list[dict[str, Any]]) -> list[str]:
    best = variants[0]["name"] if variants and variants[0]["accepted"] else None
    lines = []
    for v in variants:
        if v["accepted"]:
            mark = "loads here, preferred" if v["name"] == best else "loads here"
            lines.append(f"  {v['name']}: {mark} ({v['reason']})")
        else:
            lines.append(f"  {v['name']}: {v['reason']}")
    return lines or ["  (no build/ folder)"]


def versions_command(repo_id: str, *, as_json: bool) -> int:
    """Print :func:`versions` as a table (then each version's variants) or JSON; exit 0."""
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
    if not rows:
        print(f"{repo_id} has no version tags or vN branches")
        return 0
    print(text_table(rows, ["version", "ref", "commit", "use with get_kernel"]))
    for entry in [*data["branches"], *data["versions"]]:
        ref = entry.get("branch") or entry["tag"]
        print(f"\n{ref} ({entry['commit'][:12]}):")
        print("\n".join(_variant_lines(entry["variants"])))
    return 0


def _metadata_json(meta: Any) -> dict[str, Any]:
    return {
        "name": str(meta.name) or None,
        "version": meta.version,
        "kernels_minver": None if meta.kernels_minver is None else str(meta.kernels_minver),
        "license": meta.license,
        "upstream": meta.upstream,
        "source": meta.source,
        "python_depends": list(meta.python_depends),
        "kernel_depends": [{"repo_id": d.repo_id, **d.spec()} for d in meta.kernel_depends],
    }


def _backends(names: list[str]) -> list[str]:
    from kernels.variants import variant_backend

    return sorted({b for n in names if (b := variant_backend(n)) is not None})


def info(target: str, *, revision: str | None = None, version: int | None = None) -> dict[str, Any]:
    """A kernel's build variants, with this interpreter's verdict on each, and its metadata (that
    of the variant this interpreter would load, else of the first one).

    ``target`` is a repo id (at ``revision``, or branch ``v<version>``; default ``main``) or a local
    folder: a kernel repo, its ``build/`` or one variant.
    """
    from pathlib import Path

    from kernels.errors import InvalidArgumentError
    from kernels.platform import detect_platform

    if revision is not None and version is not None:
        raise InvalidArgumentError("give either --revision or --version, not both")
    plat = detect_platform()
    local = Path(target)
    if local.is_dir():
        if revision is not None or version is not None:
            raise InvalidArgumentError("--revision and --version do not apply to a local folder")
        return _local_info(local)
    from kernels.loader import get_kernel_variants, variant_metadata
    from kernels.resolve import make_request, resolve

    rev = f"v{version}" if version is not None else revision
    resolved = resolve(make_request(target, revision=rev), fresh=True)
    verdicts = get_kernel_variants(target, revision=resolved.commit)
    best = verdicts[0].name if verdicts and verdicts[0].accepted else None
    data: dict[str, Any] = {
        "repo_id": target,
        "revision": rev or "main",
        "commit": resolved.commit,
        "interpreter": plat.variant,
        "selected": best,
    }
    names = [v.name for v in verdicts]
    if names:
        from kernels.loader import listing_for

        rc, listing = listing_for(resolved)
        data.update(
            _metadata_json(variant_metadata(rc, resolved.commit, best or names[0], listing))
        )
    data["backends"] = _backends(names)
    data["variants"] = _verdicts_json(verdicts)
    return data


def _local_info(folder: Any) -> dict[str, Any]:
    from kernels.metadata import read_variant_metadata
    from kernels.platform import detect_platform
    from kernels.variants import looks_like_variant, rank_variants

    plat = detect_platform()
    base = folder / "build" if (folder / "build").is_dir() else folder
    names = [p.name for p in base.iterdir() if p.is_dir() and looks_like_variant(p.name)]
    verdicts = rank_variants(names, plat)
    best = verdicts[0].name if verdicts and verdicts[0].accepted else None
    variant_dir = base / (best or (names[0] if names else ""))
    if not names and (folder / "metadata.json").is_file():
        variant_dir, best = folder, folder.name  # the folder is a variant itself
    data: dict[str, Any] = {
        "path": str(folder),
        "interpreter": plat.variant,
        "selected": best,
    }
    data.update(_metadata_json(read_variant_metadata(variant_dir)))
    data["backends"] = _backends(names or [folder.name])
    data["variants"] = _verdicts_json(verdicts)
    return data


def info_command(
    target: str, *, revision: str | None, as_json: bool, version: int | None = None
) -> int:
    """Print :func:`info` as text or JSON; exit 0."""
    data = info(target, revision=revision, version=version)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    if "repo_id" in data:
        print(f"{data['repo_id']} @ {data['revision']} ({data['commit']})")
    else:
        print(f"{data['path']} (local)")
    print(f"this interpreter: {data['interpreter']}; selected: {data['selected'] or 'none'}")

    def show(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) or "-"
        return "-" if value is None else str(value)

    deps = [
        f"{d['repo_id']} ({d.get('version', d.get('revision'))})"
        for d in data.get("kernel_depends", [])
    ]
    for label, key in (
        ("name", "name"),
        ("version", "version"),
        ("needs kernels", "kernels_minver"),
        ("license", "license"),
        ("upstream", "upstream"),
        ("source", "source"),
        ("python depends", "python_depends"),
        ("backends", "backends"),
    ):
        print(f"{label}: {show(data.get(key))}")
    print(f"kernel depends: {show(deps)}")
    rows = [
        [
            ("* " if v["name"] == data["selected"] else "  ") + v["name"],
            "yes" if v["accepted"] else "no",
            v["reason"],
        ]
        for v in data["variants"]
    ]
    if rows:
        print(text_table(rows, ["variant", "loads", "why"]))
    return 0
