"""The ``poetry kernels ...`` commands: lock, check, download, add, remove.

Each one calls the ``kernels`` core and turns its errors (and the plugin's) into one ``Error:`` line
on stderr with exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cleo.helpers import argument, option
from kernels_lockembed import LOCK_NAME
from poetry.console.commands.command import Command
from poetry.console.commands.env_command import EnvCommand

from poetry_plugin_kernels import workflow

if TYPE_CHECKING:
    from cleo.io.inputs.argument import Argument
    from cleo.io.inputs.option import Option


def _run(command: Command, body: object) -> int:
    from kernels.errors import KernelsError

    try:
        return int(body())  # type: ignore[operator]
    except (KernelsError, workflow.PluginError) as err:
        workflow.report_error(command.io, err)
        return 1


def _refresh_installed(command: Command) -> None:
    """After the lock changed: update the copy embedded in the project's installed dist-info."""
    from poetry.utils.env import EnvManager

    try:
        env = EnvManager(command.poetry).get()
    except Exception:
        return  # no environment yet: `poetry install` embeds the lock when it creates one
    workflow.embed_lock(command.poetry, env, command.io)


class KernelsLockCommand(Command):
    """``poetry kernels lock``."""

    name = "kernels lock"
    description = f"Resolve [tool.kernels.dependencies] and write {LOCK_NAME}."
    arguments: ClassVar[list[Argument]] = [
        argument(
            "repos",
            "With --upgrade: upgrade only these repos (ORG/NAME); default all.",
            optional=True,
            multiple=True,
        )
    ]
    options: ClassVar[list[Option]] = [
        option("upgrade", None, "Move locked commits to the newest match of their spec."),
        option("check", None, f"Only check that {LOCK_NAME} is up to date (offline)."),
    ]

    def handle(self) -> int:
        """Lock (or with ``--check`` only verify) the project's kernels."""
        return _run(self, self._handle)

    def _handle(self) -> int:
        root = workflow.project_root(self.poetry)
        repos: list[str] = list(self.argument("repos") or [])
        if self.option("check"):
            if repos or self.option("upgrade"):
                raise workflow.PluginError("--check takes no --upgrade or repos")
            return _check(self, root, fix="poetry kernels lock")
        if repos and not self.option("upgrade"):
            raise workflow.PluginError(
                f"repos given without --upgrade: use `poetry kernels lock --upgrade {' '.join(repos)}`"
            )
        upgrade: bool | list[str] = (repos or True) if self.option("upgrade") else False
        result = workflow.lock(root, self.io, upgrade=upgrade)
        if result.written:
            _refresh_installed(self)
        return 0


def _check(command: Command, root: Path, *, fix: str) -> int:
    reasons = workflow.stale_reasons(root)
    if reasons:
        workflow.report_error(command.io, workflow.stale_message(root, reasons, fix=fix))
        return 1
    command.line(f"<c1>{LOCK_NAME}</c1> is up to date")
    return 0


class KernelsCheckCommand(Command):
    """``poetry kernels check``."""

    name = "kernels check"
    description = f"Exit 1 when {LOCK_NAME} does not match [tool.kernels.dependencies] (offline)."

    def handle(self) -> int:
        """Check the lock's freshness without network."""
        return _run(
            self,
            lambda: _check(self, workflow.project_root(self.poetry), fix="poetry kernels lock"),
        )


class KernelsDownloadCommand(EnvCommand):
    """``poetry kernels download``."""

    name = "kernels download"
    description = "Download and verify the locked kernels for the project's environment."
    options: ClassVar[list[Option]] = [
        option(
            "all-variants",
            None,
            "Download every locked build variant, not only the one the project's Python loads.",
        )
    ]

    def handle(self) -> int:
        """Download into the cache from the project's interpreter; embed the lock if installed."""
        return _run(self, self._handle)

    def _handle(self) -> int:
        root = workflow.project_root(self.poetry)
        if not (root / LOCK_NAME).is_file():
            raise workflow.PluginError(
                f"{root / LOCK_NAME} is missing; run `poetry kernels lock` first"
            )
        reasons = workflow.stale_reasons(root)
        if reasons:
            raise workflow.PluginError(
                workflow.stale_message(root, reasons, fix="poetry kernels lock")
            )
        workflow.download(self.poetry, self.env, self.io, all_variants=self.option("all-variants"))
        workflow.embed_lock(self.poetry, self.env, self.io)
        return 0


class KernelsAddCommand(Command):
    """``poetry kernels add``."""

    name = "kernels add"
    description = (
        f"Add kernel dependencies to [tool.kernels.dependencies] and lock them in {LOCK_NAME}."
    )
    arguments: ClassVar[list[Argument]] = [
        argument(
            "kernels",
            "ORG/NAME[@SPEC]: SPEC is N (branch vN) or a version specifier such as '>=0.1,<0.2' "
            "or 0.3.0 (tags v<version>). Without SPEC: the newest vN branch, else >= the newest tag.",
            multiple=True,
        )
    ]
    options: ClassVar[list[Option]] = [
        option(
            "revision",
            None,
            "Lock this branch, tag or commit instead of a version (one ORG/NAME only).",
            flag=False,
        )
    ]

    def handle(self) -> int:
        """Edit pyproject.toml (formatting kept), lock; restore pyproject.toml when locking fails."""
        return _run(self, self._handle)

    def _handle(self) -> int:
        from kernels.edit import add_dependencies, describe, parse_requirement
        from kernels.fsutil import atomic_write

        command = "poetry kernels add"

        root = workflow.project_root(self.poetry)
        texts: list[str] = list(self.argument("kernels"))
        revision: str | None = self.option("revision")
        if revision is not None and len(texts) != 1:
            raise workflow.PluginError("--revision applies to exactly one ORG/NAME")
        requested = [parse_requirement(t, revision=revision, command=command) for t in texts]
        pyproject = root / "pyproject.toml"
        before = pyproject.read_bytes()  # restored byte for byte, atomically
        added = add_dependencies(pyproject, requested, command=command)
        for repo, value in added:
            self.line(f"Using <c1>{repo}</c1> ({describe(value)})")
        from kernels.errors import KernelsError

        try:
            result = workflow.lock(root, self.io)
        except KernelsError as err:
            atomic_write(pyproject, before)
            raise workflow.PluginError(
                f"{workflow.one_line(err)} ({pyproject.name} left unchanged)"
            ) from None
        except BaseException:
            atomic_write(pyproject, before)
            raise
        if result.written:
            _refresh_installed(self)
        self.line(
            "Run <c1>poetry install</c1> (or <c1>poetry kernels download</c1>) to download them."
        )
        return 0


class KernelsRemoveCommand(Command):
    """``poetry kernels remove``."""

    name = "kernels remove"
    description = (
        f"Remove kernel dependencies from [tool.kernels.dependencies] and {LOCK_NAME} (offline)."
    )
    arguments: ClassVar[list[Argument]] = [
        argument("kernels", "ORG/NAME of each kernel to remove.", multiple=True)
    ]

    def handle(self) -> int:
        """Edit pyproject.toml (formatting kept) and the lock; refresh the installed copy."""
        return _run(self, self._handle)

    def _handle(self) -> int:
        from kernels.remove import remove_dependencies

        result = remove_dependencies(
            workflow.project_root(self.poetry), list(self.argument("kernels"))
        )
        where = f" and <c1>{LOCK_NAME}</c1>" if result.lock else ""
        for repo in result.removed:
            self.line(f"Removed <c1>{repo}</c1> from [tool.kernels.dependencies]{where}")
        if result.lock:
            _refresh_installed(self)
        return 0


COMMANDS: list[type[Command]] = [
    KernelsLockCommand,
    KernelsCheckCommand,
    KernelsDownloadCommand,
    KernelsAddCommand,
    KernelsRemoveCommand,
]
