"""The Poetry application plugin: ``poetry kernels ...`` commands and hooks on Poetry's own commands.

Hooks (cleo events), all skipped for projects without ``[tool.kernels]`` or ``kernels.lock``:

- before ``install``/``sync``: a missing ``kernels.lock`` is created; a stale one stops the command
  (like a stale ``poetry.lock``) with one error line;
- before ``build``: a stale ``kernels.lock`` stops the build; a warning when the build backend is
  plain poetry-core, whose artifacts would not carry the lock;
- after ``lock`` succeeds: a stale ``kernels.lock`` is refreshed (``--regenerate`` re-resolves all);
- after ``add``/``update``/``remove`` succeed: a stale ``kernels.lock`` is refreshed;
- after ``install``/``sync``/``add``/``update``/``remove`` succeed (not ``--dry-run``, not ``--lock``):
  ``kernels.lock`` is embedded into the root package's installed dist-info and the locked kernels are
  downloaded and verified from the project's interpreter.

Failed commands are left alone; a failure of the plugin's own step turns a zero exit code into 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cleo.events.console_command_event import ConsoleCommandEvent
from cleo.events.console_events import COMMAND, TERMINATE
from cleo.events.console_terminate_event import ConsoleTerminateEvent
from kernels_lockembed import LOCK_NAME
from poetry.plugins.application_plugin import ApplicationPlugin

from poetry_plugin_kernels import workflow

if TYPE_CHECKING:
    from cleo.commands.command import Command as CleoCommand
    from cleo.events.event import Event
    from cleo.events.event_dispatcher import EventDispatcher
    from poetry.console.application import Application
    from poetry.console.commands.command import Command
    from poetry.poetry import Poetry

INSTALLING = {"install", "sync", "add", "update", "remove"}
RELOCKING = {"lock", "add", "update", "remove"}
BLOCKED_EXIT = 1


def _option(command: CleoCommand, name: str) -> bool:
    try:
        return bool(command.option(name))
    except Exception:  # the command has no such option
        return False


def _project(command: CleoCommand) -> Poetry | None:
    """The command's project when it uses kernels, else None (outside a project too)."""
    try:
        poetry: Poetry = command.poetry  # type: ignore[attr-defined]
        return poetry if workflow.uses_kernels(poetry) else None
    except Exception:
        return None


class KernelsPlugin(ApplicationPlugin):
    """Registers the ``kernels`` commands and the listeners described in the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._blocked: set[int] = set()

    @property
    def commands(self) -> list[type[Command]]:
        """``poetry kernels lock|check|download|add|remove``."""
        from poetry_plugin_kernels.commands import COMMANDS

        return COMMANDS

    def activate(self, application: Application) -> None:
        """Register the commands and the COMMAND/TERMINATE listeners."""
        super().activate(application)
        dispatcher = application.event_dispatcher
        if dispatcher is None:
            return
        dispatcher.add_listener(COMMAND, self.before_command)
        dispatcher.add_listener(TERMINATE, self.after_command)

    def before_command(self, event: Event, event_name: str, dispatcher: EventDispatcher) -> None:
        """Refuse ``install``/``sync``/``build`` on a stale lock; create a missing one for installs."""
        if not isinstance(event, ConsoleCommandEvent):
            return
        command = event.command
        if command.name not in ("install", "sync", "build") or _option(command, "dry-run"):
            return
        poetry = _project(command)
        if poetry is None:
            return
        from kernels.errors import KernelsError

        root = workflow.project_root(poetry)
        try:
            reasons = workflow.stale_reasons(root)
            if reasons and command.name != "build" and not (root / LOCK_NAME).exists():
                event.io.write_line(f"<info>Locking kernels</info> ({LOCK_NAME} is missing)")
                workflow.lock(root, event.io)
                reasons = []
            if reasons:
                fix = "poetry lock` or `poetry kernels lock"
                raise workflow.PluginError(workflow.stale_message(root, reasons, fix=fix))
        except (KernelsError, workflow.PluginError) as err:
            workflow.report_error(event.io, err)
            self._blocked.add(id(command))
            event.disable_command()
            return
        if (
            command.name == "build"
            and workflow.build_backend(poetry) != workflow.BACKEND
            and workflow.has_dependencies(root)
        ):
            event.io.write_error_line(
                f"<warning>Warning: build-backend is not {workflow.BACKEND!r}: the built "
                f"artifacts will not carry {LOCK_NAME} (see the kernels Poetry docs)</warning>"
            )

    def after_command(self, event: Event, event_name: str, dispatcher: EventDispatcher) -> None:
        """Refresh, embed and download after Poetry's own commands succeed."""
        if not isinstance(event, ConsoleTerminateEvent):
            return
        command = event.command
        if id(command) in self._blocked:
            self._blocked.discard(id(command))
            event.set_exit_code(BLOCKED_EXIT)
            return
        name = command.name
        if event.exit_code != 0 or name not in RELOCKING | INSTALLING:
            return
        if _option(command, "dry-run"):
            return
        poetry = _project(command)
        if poetry is None:
            return
        from kernels.errors import KernelsError

        root = workflow.project_root(poetry)
        try:
            if name in RELOCKING:
                regenerate = name == "lock" and _option(command, "regenerate")
                reasons = workflow.stale_reasons(root)
                if regenerate or reasons:
                    why = "--regenerate" if regenerate else "; ".join(reasons)
                    event.io.write_line(f"<info>Updating {LOCK_NAME}</info> ({why})")
                    workflow.lock(root, event.io, upgrade=regenerate)
            if name in INSTALLING and not _option(command, "lock"):
                env = command.env  # type: ignore[attr-defined]
                workflow.embed_lock(poetry, env, event.io)
                workflow.download(poetry, env, event.io)
        except (KernelsError, workflow.PluginError) as err:
            workflow.report_error(event.io, err)
            event.set_exit_code(1)
