"""The exceptions this library raises.

Every error a user can cause or fix derives from :class:`KernelsError`; the CLI prints its message on
one line and exits non-zero instead of showing a traceback. Each class is also an instance of the
builtin type that ``kernels`` 0.17.2 raises in the same case (``ValueError`` for bad input and
unknown versions, ``FileNotFoundError`` for missing variants and cache misses, ``OSError`` for Hub
failures), so callers written for it, such as transformers, catch ours unchanged.
"""

from __future__ import annotations


class KernelsError(Exception):
    """Base class: a problem the user can act on; ``str(err)`` says what to do."""


class InvalidArgumentError(KernelsError, ValueError):
    """An argument of a public function is malformed (a repo id, revision, version or backend)."""


class ConfigError(KernelsError, ValueError):
    """``[tool.kernels]`` in a ``pyproject.toml`` is malformed."""


class LockfileError(KernelsError, ValueError):
    """A ``kernels.lock`` file is malformed, missing, stale or lacks a repository."""


class ResolutionError(KernelsError, ValueError):
    """A version of a repository could not be resolved: no branch or tag matches it."""


class NoCompatibleVariantError(KernelsError, FileNotFoundError):
    """A repository has no build variant that this interpreter can load."""


class IntegrityError(KernelsError, ValueError):
    """Downloaded or cached bytes do not match the listing or the lock."""


class NotInCacheError(KernelsError, FileNotFoundError):
    """A kernel is not in the local cache and the call may not download it."""


class HubError(KernelsError, OSError):
    """The Hub answered with an error or could not be reached."""


class NotFoundOnHubError(HubError):
    """The repository or revision does not exist on the Hub (or the token cannot see it)."""


class MissingDependencyError(KernelsError, ImportError):
    """A package the kernel needs (torch, or one of its ``python-depends``) is not installed."""


class UntrustedKernelError(KernelsError, ValueError):
    """A repository's organisation is not a trusted kernel publisher and the call did not opt in."""


class UnsupportedDeviceError(KernelsError, RuntimeError):
    """A build variant's declared architectures do not cover this machine's GPU."""


class KernelsVersionError(KernelsError, RuntimeError):
    """A kernel needs a newer release of this library (``kernels-minver`` in its metadata)."""


class UnknownDependencyError(KernelsError, ValueError):
    """A kernel's ``python-depends`` names a package outside the allowlist."""


class DependencyCycleError(KernelsError, ValueError):
    """Kernels depend on each other in a cycle."""


class KernelDependencyError(KernelsError, RuntimeError):
    """``get_kernel_dep`` was called outside a kernel's import, or for a kernel it does not declare."""


class LayerError(KernelsError, ValueError):
    """A hub layer is missing from its kernel, or no mapping or mode serves a marked layer."""


class LayerValidationError(KernelsError, TypeError):
    """A hub layer does not fit the module it would replace (state of its own, other forward)."""


class FileSystemError(KernelsError, OSError):
    """A file could not be read or written (no space, read-only, permissions); ``errno`` is kept.

    Also an :class:`OSError`, so code that caught the raw error keeps working.
    """

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class Interrupted(KernelsError):
    """A download was stopped because the process is being interrupted (Ctrl-C)."""
