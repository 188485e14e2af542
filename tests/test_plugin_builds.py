"""The plugins share one build hook (vendoring the core's _lockembed.py): keep the copies equal."""

from __future__ import annotations

from kernelhub import ROOT


def test_every_plugin_uses_the_same_build_hook() -> None:
    hooks = sorted((ROOT / "plugins").glob("**/hatch_build.py"))
    assert len(hooks) == 4, hooks
    assert len({h.read_bytes() for h in hooks}) == 1, "plugins/*/hatch_build.py differ; copy one"
