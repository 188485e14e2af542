"""The exceptions this library raises.

Every error a user can cause or fix derives from :class:`KernelsError`; the CLI prints its message on
one line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class KernelsError(Exception):
    """Base class: a problem the user can act on; ``str(err)`` says what to do."""


class ConfigError(KernelsError):
    """``[tool.kernels]`` in a ``pyproject.toml`` is malformed."""


class LockfileError(KernelsError):
    """A ``kernels.lock`` file is malformed, missing, stale or lacks a repository."""


class ResolutionError(KernelsError):
    """A repository, revision or version could not be resolved on the Hub."""


class NoCompatibleVariantError(KernelsError):
    """A repository has no build variant that this interpreter can load."""


class IntegrityError(KernelsError):
    """Downloaded or cached bytes do not match the listing or the lock."""


class NotInCacheError(KernelsError):
    """A kernel is not in the local cache and the call may not download it."""


class HubError(KernelsError):
    """The Hub answered with an error or could not be reached."""


class FileSystemError(KernelsError, OSError):
    """A file could not be read or written (no space, read-only, permissions); ``errno`` is kept.

    Also an :class:`OSError`, so code that caught the raw error keeps working.
    """

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class Interrupted(KernelsError):
    """A download was stopped because the process is being interrupted (Ctrl-C)."""
