"""pdm-backend build hook: embed the project's ``kernels.lock`` in what it builds.

pdm-backend loads it from the ``pdm.build.hook`` entry point whenever ``pdm-kernels`` is in the build
environment (``[build-system] requires = ["pdm-backend", "pdm-kernels"]``). It runs inside isolated
builds, so it imports only the standard library and the stdlib-only ``kernels_lockembed``
(distribution ``kernels-lockembed``), never the ``kernels`` core itself.

- wheel and editable: ``<name>-<version>.dist-info/kernels.lock``, where ``load_kernel`` reads it;
  editable wheels also get ``top_level.txt``, because they record only a ``.pth`` file and the import
  name could not be mapped back to the distribution otherwise;
- sdist: ``kernels.lock`` at the root, so that a wheel built from the sdist embeds it too.

A project without ``[tool.kernels.dependencies]`` is left alone.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from kernels_lockembed import LOCK_NAME, LockEmbedError, lock_text_for_build

_TMP_ATTR = "kernels_tmp_dir"


def _top_level_names(context: Any) -> list[str]:
    """Import names of the project's top-level packages and modules, as pdm-backend finds them."""
    paths = context.config.convert_package_paths()
    names = [*paths.get("packages", []), *paths.get("py_modules", [])]
    return sorted({n for n in names if "." not in n})


def pdm_build_update_files(context: Any, files: dict[str, Path]) -> None:
    """Add ``kernels.lock`` (and, for editable wheels, ``top_level.txt``) to the artifact's files.

    Fails the build with one line when the project has kernel dependencies but no valid lock
    (unless ``[tool.kernels] missing-lock = "warn"``).
    """
    root = Path(context.root)
    try:
        text = lock_text_for_build(
            root, warn=lambda m: print(f"kernels: warning: {m}", file=sys.stderr)
        )
    except LockEmbedError as err:
        # One line at the end of the build output and a failed build, not a traceback.
        raise SystemExit(f"error: {err}") from None
    if text is None:
        return
    # The validated text is the source file's: map the file itself. Nothing goes to the build dir
    # for plain wheels and sdists, whose every file pdm-backend would add to the artifact.
    if context.target == "sdist":
        files[LOCK_NAME] = root / LOCK_NAME
    else:
        dist_info = context.builder.dist_info_name
        files[f"{dist_info}/{LOCK_NAME}"] = root / LOCK_NAME
        tops = _top_level_names(context) if context.target == "editable" else []
        if tops and f"{dist_info}/top_level.txt" not in files:
            # Not in the build dir: pdm-backend adds all of it to the wheel and also walks
            # <build dir>/<dist-info> for the metadata, so a file there would be added twice.
            tmp = Path(tempfile.mkdtemp(prefix="pdm-kernels-"))
            setattr(context, _TMP_ATTR, tmp)
            (tmp / "top_level.txt").write_text("\n".join(tops) + "\n", encoding="utf-8")
            files[f"{dist_info}/top_level.txt"] = tmp / "top_level.txt"
    print(f"kernels: embedded {LOCK_NAME} from {root} ({context.target})", file=sys.stderr)


def pdm_build_finalize(context: Any, artifact: Path) -> None:
    """Remove the temporary folder that held ``top_level.txt`` (editable builds)."""
    tmp = getattr(context, _TMP_ATTR, None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
