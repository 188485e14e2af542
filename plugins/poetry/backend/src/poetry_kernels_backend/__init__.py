"""A PEP 517 build backend: poetry-core, plus ``kernels.lock`` in every artifact it builds.

poetry-core has no build hooks, so this module wraps ``poetry.core.masonry.api``: every hook is
delegated to it, then ``kernels.lock`` (and ``top_level.txt``, which the run-time lookup uses for
editable installs) is added to the wheel's ``.dist-info`` with RECORD rows, to the prepared metadata
directory, and to the sdist (so a wheel built from the sdist still carries it). Use it with::

    [build-system]
    requires = ["poetry-kernels-backend>=0.18"]
    build-backend = "poetry_kernels_backend"

Build environments are isolated and may hold another ``kernels`` release, so this module imports
nothing of the ``kernels`` library: only the standard library, poetry-core and the stdlib-only
``kernels_lockembed`` (distribution ``kernels-lockembed``, a dependency of this one).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from kernels_lockembed import LOCK_NAME, LockEmbedError, lock_text_for_build
from poetry.core.masonry import api as _core

__version__ = "0.18.2"

get_requires_for_build_wheel = _core.get_requires_for_build_wheel
get_requires_for_build_sdist = _core.get_requires_for_build_sdist
get_requires_for_build_editable = _core.get_requires_for_build_editable

TOP_LEVEL = "top_level.txt"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _lock_text() -> str | None:
    """The lock text of the project in the current directory, or None; exits with one line on error."""
    try:
        text: str | None = lock_text_for_build(Path.cwd(), warn=_warn)
    except LockEmbedError as err:
        # A traceback from inside the frontend's hook runner would bury the message.
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    return text


def top_level_names(project: Path | Any) -> list[str]:
    """The top-level import names a poetry project ships (best effort).

    ``project`` is the project's folder or an already loaded ``Poetry`` object (poetry-core's, or
    Poetry's own, which the plugin passes). Editable wheels hold only a ``.pth`` file, so
    ``top_level.txt`` is how the run-time lookup maps the caller's import name to this distribution.
    Returns ``[]`` when poetry-core's package discovery cannot be read (the lookup then falls back to
    RECORD and ``direct_url.json``).
    """
    try:
        from poetry.core.masonry.builders.builder import Builder
        from poetry.core.masonry.utils.package_include import PackageInclude

        if isinstance(project, Path):
            from poetry.core.factory import Factory

            poetry = Factory().create_poetry(project, with_groups=False)
        else:
            poetry = project
        # Builder._module is poetry-core's resolved `packages` list; there is no public accessor.
        includes = Builder(poetry)._module.includes
    except Exception:
        return []
    names: set[str] = set()
    for inc in includes:
        if not isinstance(inc, PackageInclude):
            continue
        if inc.target:
            names.add(Path(inc.target).parts[0])
            continue
        for element in inc.elements:
            parts = element.relative_to(inc.base).parts
            if len(parts) > 1 or element.is_dir():
                names.add(parts[0])
            elif element.suffix == ".py":
                names.add(element.stem)
    return sorted(names)


def _extra_files(lock_text: str) -> dict[str, bytes]:
    files = {LOCK_NAME: lock_text.encode("utf-8")}
    tops = top_level_names(Path.cwd())
    if tops:
        files[TOP_LEVEL] = ("\n".join(tops) + "\n").encode("utf-8")
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def add_to_wheel(wheel: Path, files: dict[str, bytes]) -> None:
    """Rewrite ``wheel`` so that its ``.dist-info`` holds ``files`` (name -> bytes), RECORD updated.

    Entries of the same name already in the wheel (copied from a prepared metadata directory) are
    replaced, never duplicated. Other entries keep their bytes, timestamps and permissions.
    """
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        records = [
            i.filename
            for i in infos
            if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/RECORD")
        ]
        if len(records) != 1:
            raise RuntimeError(f"{wheel.name}: expected one .dist-info/RECORD, found {records}")
        record_name = records[0]
        dist_info = record_name.rsplit("/", 1)[0]
        added = {f"{dist_info}/{name}": data for name, data in files.items()}
        skip = {*added, record_name}
        kept = [(i, zin.read(i)) for i in infos if i.filename not in skip]
        rows = [
            r
            for r in csv.reader(io.StringIO(zin.read(record_name).decode("utf-8")))
            if r and r[0] not in added and r[0] != record_name
        ]
        stamp = next(
            (i.date_time for i in infos if i.filename == f"{dist_info}/METADATA"),
            (1980, 1, 1, 0, 0, 0),
        )
    rows += [[name, _record_hash(data), str(len(data))] for name, data in added.items()]
    rows.append([record_name, "", ""])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    tmp = wheel.with_name(wheel.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info, data in kept:
            zout.writestr(info, data)
        for name, data in [*added.items(), (record_name, out.getvalue().encode("utf-8"))]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zout.writestr(info, data)
    os.replace(tmp, wheel)


def add_to_sdist(sdist: Path, name: str, data: bytes) -> bool:
    """Add ``<base>/<name>`` to a ``.tar.gz`` sdist unless it is there; True when it was added."""
    with tarfile.open(sdist, "r:gz") as tin:
        members = tin.getmembers()
        base = members[0].name.split("/", 1)[0]
        target = f"{base}/{name}"
        if any(m.name == target for m in members):
            return False
        contents = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in members]  # type: ignore[union-attr]
    template = next((m for m in members if m.name == f"{base}/pyproject.toml"), members[0])
    info = tarfile.TarInfo(target)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = template.mtime
    info.uid, info.gid, info.uname, info.gname = (
        template.uid,
        template.gid,
        template.uname,
        template.gname,
    )
    tmp = sdist.with_name(sdist.name + ".tmp")
    # mtime=0 in the gzip header, as poetry-core writes it, keeps the archive reproducible.
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tout,
    ):
        for member, content in contents:
            tout.addfile(member, io.BytesIO(content) if content is not None else None)
        tout.addfile(info, io.BytesIO(data))
    os.replace(tmp, sdist)
    return True


def _add_to_metadata_dir(metadata_directory: str, dist_info: str, lock_text: str) -> None:
    target = Path(metadata_directory) / dist_info
    for name, data in _extra_files(lock_text).items():
        (target / name).write_bytes(data)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    """poetry-core's metadata, plus ``kernels.lock`` and ``top_level.txt`` in the dist-info."""
    lock_text = _lock_text()
    name: str = _core.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    if lock_text is not None:
        _add_to_metadata_dir(metadata_directory, name, lock_text)
    return name


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    """Same as :func:`prepare_metadata_for_build_wheel` (poetry-core shares it too)."""
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """poetry-core's wheel with ``kernels.lock`` and ``top_level.txt`` in its dist-info."""
    lock_text = _lock_text()
    name: str = _core.build_wheel(wheel_directory, config_settings, metadata_directory)
    if lock_text is not None:
        add_to_wheel(Path(wheel_directory) / name, _extra_files(lock_text))
    return name


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """poetry-core's editable wheel with ``kernels.lock`` and ``top_level.txt`` in its dist-info."""
    lock_text = _lock_text()
    name: str = _core.build_editable(wheel_directory, config_settings, metadata_directory)
    if lock_text is not None:
        add_to_wheel(Path(wheel_directory) / name, _extra_files(lock_text))
    return name


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    """poetry-core's sdist with ``kernels.lock`` beside ``pyproject.toml`` (added if missing)."""
    lock_text = _lock_text()
    name: str = _core.build_sdist(sdist_directory, config_settings)
    if lock_text is not None:
        add_to_sdist(Path(sdist_directory) / name, LOCK_NAME, lock_text.encode("utf-8"))
    return name
