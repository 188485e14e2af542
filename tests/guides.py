"""Running a guide of docs/integrations/ as written: the blocks it marks for the test, in order.

A guide marks a fenced block with an HTML comment on the line before it (invisible on the site):

- ``<!-- test: run [NAME] -->``: a bash block, run as written with ``set -euo pipefail``, in the folder
  where the previous block ended and with the variables it exported (so ``cd`` and ``export`` carry
  over, as in the reader's shell);
- ``<!-- test: file PATH -->``: the whole content of PATH (relative to that folder);
- ``<!-- test: merge PATH -->``: TOML tables set into PATH (the keys shown replace the file's, the
  rest of the file stays), for edits of a file a tool generated.

The only changes to the text are the test's substitutions: the wheel folder placeholder
:data:`DIST` becomes the session's folder of this repo's wheels, and repo ids may be mapped to
kernels published for the test. Blocks the test cannot run (installing torch from the PyTorch index)
carry no mark; the test provides torch its own way and says so. ``NAME`` lets a test act before a
block (publish a new version, create the environment that holds torch).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

ROOT = Path(__file__).resolve().parent.parent
DIST = "/path/to/kernels/dist"
"""The placeholder the guides write for the folder ``scripts/wheels.sh`` fills."""

_MARK = re.compile(
    r"^(?P<indent> *)<!-- test: (?P<kind>run|file|merge)(?: (?P<arg>\S+))? -->\n"
    r"(?P=indent)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
    re.M | re.S,
)


@dataclass(frozen=True)
class Step:
    """One marked block of a guide."""

    kind: str
    arg: str | None
    body: str
    line: int


def steps(page: str | Path) -> list[Step]:
    """The marked blocks of ``docs/integrations/<page>`` (or of a path), in document order."""
    path = Path(page) if Path(page).is_absolute() else ROOT / "docs" / "integrations" / page
    text = path.read_text(encoding="utf-8")
    found = []
    for m in _MARK.finditer(text):
        # A block inside a list item is indented like the item's text.
        body = "".join(line[len(m["indent"]) :] for line in m["body"].splitlines(keepends=True))
        found.append(Step(m["kind"], m["arg"], body, text.count("\n", 0, m.start()) + 1))
    return found


def _merge(into: Any, new: Any) -> None:
    for key, value in new.items():
        old = into.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            _merge(old, value)
        else:
            into[key] = value


_RUNNER = """\
set -euo pipefail
cd "$GUIDE_CWD"
if [ -f "$GUIDE_STATE/env" ]; then source "$GUIDE_STATE/env"; fi
{body}
pwd > "$GUIDE_STATE/cwd"
export -p > "$GUIDE_STATE/env"
"""


@dataclass
class Guide:
    """A run of one guide: where it is, what it printed (by step name), the environment it had."""

    page: str
    cwd: Path
    env: dict[str, str]
    replace: Mapping[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def text(self, body: str) -> str:
        """``body`` with the test's substitutions applied."""
        for old, new in self.replace.items():
            body = body.replace(old, new)
        return body

    def _state(self) -> Path:
        """Where the runner keeps the folder and the exports between blocks."""
        state = self.cwd / ".guide-state"
        state.mkdir(parents=True, exist_ok=True)
        return state

    def here(self) -> Path:
        """The folder the last block ended in."""
        saved = self._state() / "cwd"
        return Path(saved.read_text().strip()) if saved.exists() else self.cwd

    def run_step(self, step: Step) -> str:
        """Run or write one step; return what it printed (stdout and stderr)."""
        body = self.text(step.body)
        where = f"docs/integrations/{self.page}:{step.line}"
        if step.kind in ("file", "merge"):
            assert step.arg, f"{where}: `{step.kind}` needs a path"
            path = self.here() / step.arg
            path.parent.mkdir(parents=True, exist_ok=True)
            if step.kind == "file":
                path.write_text(body, encoding="utf-8")
            else:
                doc = tomlkit.parse(path.read_text(encoding="utf-8"))
                _merge(doc, tomlkit.parse(body))
                path.write_text(tomlkit.dumps(doc), encoding="utf-8")
            return ""
        env = {**self.env, "GUIDE_CWD": str(self.here()), "GUIDE_STATE": str(self._state())}
        out = subprocess.run(
            ["bash", "-c", _RUNNER.format(body=body)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        printed = out.stdout + out.stderr
        assert out.returncode == 0, (
            f"{where}: the guide's block failed ({out.returncode}):\n{body}\n---\n{printed}"
        )
        return printed

    def run(self, hooks: Mapping[str, Callable[[Guide], None]] | None = None) -> Guide:
        """Run every marked step in order; ``hooks[name]`` runs just before the step ``name``."""
        hooks = dict(hooks or {})
        todo = steps(self.page)
        names = [s.arg for s in todo if s.kind == "run" and s.arg]
        missing = sorted(set(hooks) - set(names))
        assert not missing, f"docs/integrations/{self.page} has no step named {missing}"
        for i, step in enumerate(todo):
            name = step.arg if step.kind == "run" and step.arg else f"step{i}"
            if name in hooks:
                hooks[name](self)
            start = time.monotonic()
            self.outputs[name] = self.run_step(step)
            self.seconds[name] = round(time.monotonic() - start, 2)
        return self


__all__ = ["DIST", "Guide", "Step", "steps"]
