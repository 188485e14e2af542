"""The PDM plugin: ``pdm kernels ...`` and ``kernels.lock`` kept in step with ``pdm lock``/``pdm install``.

PDM loads :func:`register` from the ``pdm`` entry-point group in its own Python, which usually has no
torch, so:

- the ``kernels`` core is imported lazily, inside the handlers, and only for projects that have a
  ``[tool.kernels]`` table (every other project pays one dictionary lookup per signal);
- downloads run in the project's own interpreter (``<python> -m kernels download``), which sees the
  torch that decides the build variant.

Signals used (every handler honours ``--dry-run``; PDM itself honours ``--skip``):

- ``post_lock``: after ``pdm lock``/``add``/``update``/``remove`` wrote ``pdm.lock``, re-lock the
  kernels that no longer satisfy their spec (``lock_project`` keeps the others as they are);
- ``pre_install``: before ``pdm install`` installs the project, refresh a stale ``kernels.lock`` (so
  the project's build embeds the new one), as ``pdm install`` does for ``pdm.lock``;
- ``post_install``: download and verify the locked kernels for the project's interpreter.

Errors from the core reach the user as one PDM error line and exit status 1.
"""

from __future__ import annotations

import argparse
import re
import weakref
from typing import TYPE_CHECKING, Any

from pdm.cli.commands.base import BaseCommand
from pdm.exceptions import PdmUsageError
from pdm.signals import post_install, post_lock, pre_install, pre_invoke
from rich.markup import escape

if TYPE_CHECKING:
    from pdm.core import Core
    from pdm.project import Project

LOCK_NAME = "kernels.lock"  # the core's kernels.lockfile.LOCK_NAME, without importing the core
# The installed project carries a copy of the lock in its metadata, refreshed when PDM reinstalls it.
INSTALL_HINT = (
    "Run `pdm install` to download the locked kernels and reinstall the project with the new lock."
)
REINSTALL_HINT = "Run `pdm install` to reinstall the project with the new lock."

# The command and options of the running invocation, for the install hooks (their signals do not
# carry them): `pdm install --check` must refuse a stale lock, `pdm sync` must not write one.
_invocations: weakref.WeakKeyDictionary[Project, tuple[str | None, argparse.Namespace]] = (
    weakref.WeakKeyDictionary()
)


class KernelsError(PdmUsageError):
    """A ``kernels`` error shown by PDM as ``[KernelsError]: <message>`` without a traceback."""

    def __init__(self, message: str) -> None:
        # One line (the core indents one failure per line under a header), and escaped: PDM prints
        # the message through rich, which would read "[tool.kernels]" as markup.
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        flat = " ".join([*lines[:1], "; ".join(lines[1:])] if len(lines) > 1 else lines)
        super().__init__(escape(flat))


# ---- helpers --------------------------------------------------------------------------------------


def kernels_table(project: Project) -> dict[str, Any] | None:
    """The project's ``[tool.kernels]`` table, or ``None`` (cheap: PDM has already parsed the file)."""
    try:
        table = project.pyproject.open_for_read().get("tool", {}).get("kernels")
    except Exception:  # a broken pyproject.toml is PDM's to report, not ours
        return None
    return table if isinstance(table, dict) else None


def _echo(project: Project, message: str, *, err: bool = False) -> None:
    project.core.ui.echo(escape(message), err=err)


def _warn(project: Project, message: str) -> None:
    project.core.ui.warn(escape(message))


def _core_errors() -> tuple[type[BaseException], ...]:
    from kernels.errors import KernelsError as CoreError

    return (CoreError, OSError)


def lock(project: Project, *, upgrade: list[str] | bool = False) -> bool:
    """Run the core's ``lock_project`` on the project; print one summary line; True if it wrote.

    Raises :class:`KernelsError` (nothing written) when a dependency cannot be resolved.
    """
    from kernels.project import lock_project

    try:
        result = lock_project(project.root, upgrade=upgrade)
    except _core_errors() as err:
        raise KernelsError(str(err)) from None
    state = "updated" if result.written else "unchanged"
    _echo(
        project,
        f"{LOCK_NAME} {state}: {len(result.lock.kernels)} kernel(s) ({len(result.updated)} resolved, "
        f"{len(result.kept)} kept, {len(result.removed)} removed)",
    )
    written: bool = result.written
    return written


def stale(project: Project) -> list[str]:
    """Why ``kernels.lock`` does not match ``[tool.kernels.dependencies]`` (offline; empty: fresh)."""
    from kernels.project import stale_reasons

    try:
        reasons: list[str] = stale_reasons(project.root)
    except _core_errors() as err:
        raise KernelsError(str(err)) from None
    return reasons


def project_python(project: Project) -> str:
    """The interpreter of the project's environment (the one that has torch)."""
    return str(project.environment.interpreter.executable)


def download(project: Project, *, all_variants: bool = False) -> str:
    """Download and verify the locked kernels in the project's interpreter; return the summary line.

    Raises :class:`KernelsError` with the core's message when a kernel cannot be fetched or verified,
    or when the project's environment has no ``kernels`` to run the download with.
    """
    from kernels.project import download_in_interpreter, lock_path

    if not lock_path(project.root).is_file():
        raise KernelsError(
            f"{lock_path(project.root)} is missing; run `pdm lock` or `pdm kernels lock`"
        )
    python = project_python(project)
    try:
        proc = download_in_interpreter(python, project.root, all_variants=all_variants)
    except OSError as err:
        raise KernelsError(f"cannot run {python}: {err}") from None
    out_lines = [line for line in proc.stdout.splitlines() if line.strip()]
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 0:
        if any(re.search(r"No module named kernels\b", line) for line in err_lines):
            raise KernelsError(
                f"the project environment ({python}) has no `kernels` package to download the locked "
                "kernels with; add `kernels` to the project's dependencies and run `pdm install`"
            )
        errors = [line.removeprefix("error: ") for line in err_lines if line.startswith("error:")]
        detail = "; ".join(errors) or (
            err_lines[-1] if err_lines else f"exit status {proc.returncode}"
        )
        summary = f" ({out_lines[-1]})" if out_lines else ""
        if "PyTorch is not installed" in detail:
            detail += (
                "; add torch to the project (`pdm add torch`, with a source for the PyTorch index "
                "of your build: see the kernels PDM guide) or `pdm use` an interpreter that has it"
            )
        raise KernelsError(f"downloading the locked kernels failed{summary}: {detail}")
    return out_lines[-1] if out_lines else "locked kernels downloaded"


# ---- signal handlers ------------------------------------------------------------------------------


def on_pre_invoke(
    project: Project, *, command: str | None, options: argparse.Namespace, **_: Any
) -> None:
    """Remember the command and options of this invocation (nothing else: it runs for every command)."""
    _invocations[project] = (command, options)


def on_post_lock(project: Project, *, dry_run: bool = False, **_: Any) -> None:
    """After ``pdm.lock`` was written: bring a stale ``kernels.lock`` up to date (changed entries only)."""
    if dry_run or not project.enable_write_lockfile or kernels_table(project) is None:
        return
    if stale(project):
        lock(project)


def on_pre_install(project: Project, *, dry_run: bool = False, hooks: Any = None, **_: Any) -> None:
    """Before installing: ``pdm install`` refreshes a stale ``kernels.lock`` (``--check`` refuses it),
    other commands warn, so the project's build embeds the lock that the download will use."""
    if dry_run or (hooks is not None and not hooks.should_run("post_install")):
        return
    if kernels_table(project) is None:
        return
    reasons = stale(project)
    if not reasons:
        return
    command, options = _invocations.get(project, (None, argparse.Namespace()))
    why = "; ".join(reasons)
    if command == "install" and getattr(options, "check", False):
        raise KernelsError(f"{LOCK_NAME} is out of date ({why}); run `pdm lock` to update it")
    if command == "install" and project.enable_write_lockfile:
        _echo(project, f"{LOCK_NAME} is out of date ({why}); updating it", err=True)
        lock(project)
        return
    _warn(project, f"{LOCK_NAME} is out of date ({why}); run `pdm lock` to update it")


def on_post_install(project: Project, *, dry_run: bool = False, **_: Any) -> None:
    """After installing: download and verify the locked kernels for the project's interpreter."""
    if dry_run:
        return
    table = kernels_table(project)
    if table is None or (not table.get("dependencies") and not (project.root / LOCK_NAME).exists()):
        return
    _echo(project, f"kernels: {download(project)}")


# ---- commands -------------------------------------------------------------------------------------


class LockCommand(BaseCommand):
    """Resolve [tool.kernels.dependencies] and write kernels.lock (kept entries stay as they are)"""

    name = "lock"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--upgrade",
            nargs="*",
            metavar="REPO",
            default=None,
            help="move locked commits to the newest match (all, or only the named repos)",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="only check that kernels.lock is up to date (offline); exit 1 if not",
        )

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        if options.check:
            return CheckCommand().handle(project, options)
        upgrade: list[str] | bool = False if options.upgrade is None else (options.upgrade or True)
        if lock(project, upgrade=upgrade):
            _echo(project, INSTALL_HINT)


class CheckCommand(BaseCommand):
    """Exit 1 when kernels.lock does not match [tool.kernels.dependencies] (offline)"""

    name = "check"

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        reasons = stale(project)
        if reasons:
            raise KernelsError(
                f"{project.root / LOCK_NAME} is out of date: {'; '.join(reasons)}; "
                "run `pdm kernels lock` to update it"
            )
        _echo(project, f"{project.root / LOCK_NAME} is up to date")


class DownloadCommand(BaseCommand):
    """Download the locked kernels into the cache, verified, for the project's interpreter"""

    name = "download"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--all-variants",
            action="store_true",
            help="download every locked build variant, not only the one the project's interpreter loads",
        )

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        _echo(project, f"kernels: {download(project, all_variants=options.all_variants)}")


_SPEC_HELP = "N (branch vN), a version specifier such as '>=0.1,<0.2', or a version such as 0.1.0"


class AddCommand(BaseCommand):
    """Add kernels to [tool.kernels.dependencies] and lock them"""

    name = "add"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "kernels",
            nargs="+",
            metavar="ORG/NAME[@SPEC]",
            help=f"the kernel repos; SPEC is {_SPEC_HELP}",
        )
        parser.add_argument(
            "--revision", default=None, help="lock a branch, tag or commit instead (one kernel)"
        )

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        from kernels.edit import add_dependencies, describe, parse_requirement
        from kernels.fsutil import atomic_write

        command = "pdm kernels add"
        path = project.root / "pyproject.toml"
        before = path.read_bytes()  # restored byte for byte, atomically
        if options.revision is not None and len(options.kernels) != 1:
            raise KernelsError("--revision applies to exactly one ORG/NAME")
        try:
            requested = [
                parse_requirement(text, revision=options.revision, command=command)
                for text in options.kernels
            ]
            added = add_dependencies(path, requested, command=command)
        except _core_errors() as err:
            raise KernelsError(str(err)) from None
        try:
            lock(project)
        except BaseException:
            # Like `pdm add`: a dependency that cannot be locked is not added.
            atomic_write(path, before)
            raise
        project.pyproject.reload()
        for repo_id, value in added:
            _echo(project, f"Added {repo_id} ({describe(value)}) to [tool.kernels.dependencies]")
        _echo(project, INSTALL_HINT)


class RemoveCommand(BaseCommand):
    """Remove kernels from [tool.kernels.dependencies] and kernels.lock (offline)"""

    name = "remove"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("kernels", nargs="+", metavar="ORG/NAME", help="the kernels to remove")

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        from kernels.remove import remove_dependencies

        try:
            result = remove_dependencies(project.root, options.kernels)
        except _core_errors() as err:
            raise KernelsError(str(err)) from None
        project.pyproject.reload()
        where = f" and {LOCK_NAME}" if result.lock else ""
        for repo_id in result.removed:
            _echo(project, f"Removed {repo_id} from [tool.kernels.dependencies]{where}")
        _echo(project, REINSTALL_HINT)


class KernelsCommand(BaseCommand):
    """Add, remove, lock, check and download the project's compute kernels (kernels.lock)"""

    name = "kernels"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        subparsers = parser.add_subparsers(title="commands", metavar="")
        for cmd in (LockCommand, DownloadCommand, CheckCommand, AddCommand, RemoveCommand):
            cmd.register_to(subparsers)
        self.parser = parser

    def handle(self, project: Project, options: argparse.Namespace) -> None:
        self.parser.print_help()


def register(core: Core) -> None:
    """The ``pdm`` entry point: add ``pdm kernels`` and connect the lock/install hooks."""
    core.register_command(KernelsCommand, "kernels")
    pre_invoke.connect(on_pre_invoke, weak=False)
    post_lock.connect(on_post_lock, weak=False)
    pre_install.connect(on_pre_install, weak=False)
    post_install.connect(on_post_install, weak=False)
