"""Trusted kernel publishers: who may run code in this process without ``trust_remote_code``.

As in ``kernels`` 0.17.2, a kernel repository is loaded only when its organisation is a trusted
kernel publisher on the Hub (``GET /api/organizations/{org}/overview`` answers
``trustedKernelPublisher: true``), or the caller passes ``trust_remote_code=True`` (every repo) or a
list of repo ids that names it. Offline (``HF_HUB_OFFLINE=1``) the check is skipped with a warning:
the kernel must already be in the cache, where a checked load put it.

The Hub's answer (the *verdict*) is kept in memory (per organisation) and in the cache, in each
repository's ``<repo>/.kernels/trust.json`` (which ``huggingface_hub`` ignores), so that:

- a process asks about one organisation at most once per ``KERNELS_TRUST_MAX_AGE`` seconds (default
  3600), and processes starting together ask once between them (they wait on a file lock);
- a load served entirely from the cache (a cached commit, a recently confirmed branch) makes no
  request at all: it reuses the stored verdict whatever its age, as that verdict let the files in;
- a load that downloads files asks again once the verdict is older than ``KERNELS_TRUST_MAX_AGE``,
  and an "untrusted" verdict is asked again once it is that old (the organisation may since have
  been marked trusted).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kernels.errors import InvalidArgumentError, UntrustedKernelError

if TYPE_CHECKING:
    from kernels.cache import RepoCache

logger = logging.getLogger(__name__)

TrustRemoteCode = bool | list[str]
"""``True`` trusts every repository; a list trusts those repository ids besides trusted publishers."""

_memo: dict[tuple[str, str], Verdict] = {}
"""(endpoint, organisation) -> the newest verdict this process saw."""
_memo_lock = threading.Lock()
_warned_offline: set[str] = set()


@dataclass(frozen=True)
class Verdict:
    """What the Hub said about one organisation, and when."""

    trusted: bool
    checked: float
    """``time.time()`` of the answer."""
    detail: str = ""
    """Why it is not trusted, for the error message."""

    @property
    def age(self) -> float:
        """Seconds since the answer (negative ages, from a clock that moved back, count as old)."""
        age = time.time() - self.checked
        return age if age >= 0 else float("inf")


def max_age() -> float:
    """Seconds a verdict is reused before a downloading load asks again (``KERNELS_TRUST_MAX_AGE``)."""
    try:
        return max(0.0, float(os.environ.get("KERNELS_TRUST_MAX_AGE", "3600")))
    except ValueError:
        return 3600.0


def validate_trust_remote_code(value: object) -> TrustRemoteCode:
    """Return ``value`` when it is a bool or a list of repo ids; else raise ``InvalidArgumentError``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(
        f"trust_remote_code must be True, False or a list of repo ids, got {value!r}"
    )


def allowed_by_caller(repo_id: str, trust_remote_code: object) -> bool:
    """True when ``trust_remote_code`` trusts ``repo_id`` whoever publishes it."""
    value = validate_trust_remote_code(trust_remote_code)
    return value is True or (isinstance(value, list) and repo_id in value)


def _record(rc: RepoCache) -> Path:
    return rc.meta / "trust.json"


def _load(rc: RepoCache, ep: str) -> Verdict | None:
    try:
        data = json.loads(_record(rc).read_text(encoding="utf-8"))
        if data.get("endpoint") != ep:
            return None  # a verdict of another Hub says nothing about this one
        return Verdict(bool(data["trusted"]), float(data["checked"]), str(data.get("detail", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _save(rc: RepoCache, ep: str, verdict: Verdict) -> None:
    from kernels.fsutil import atomic_write

    doc = {"endpoint": ep, "org": rc.repo_id.split("/")[0], "trusted": verdict.trusted}
    doc.update({"checked": verdict.checked, "detail": verdict.detail})
    try:
        atomic_write(_record(rc), json.dumps(doc, sort_keys=True))
    except OSError as err:  # a read-only cache: the verdict still holds for this process
        logger.debug("cannot store the trust verdict for %s: %s", rc.repo_id, err)


def stored_verdict(rc: RepoCache) -> tuple[Verdict | None, bool]:
    """The newest verdict this process or ``rc``'s record holds for the repo's organisation on the
    current endpoint, and whether the record holds it."""
    from kernels.hub import endpoint

    ep = endpoint()
    with _memo_lock:
        mem = _memo.get((ep, rc.repo_id.split("/")[0]))
    disk = _load(rc, ep)
    if mem is not None and (disk is None or mem.checked > disk.checked):
        return mem, False
    return disk, disk is not None


def _ask_hub(org: str, repo_id: str) -> Verdict:
    """One request: the organisation overview. A 404 is a verdict (not trusted); other failures raise."""
    from huggingface_hub.errors import HfHubHTTPError

    from kernels import http
    from kernels.hub import endpoint

    url = f"{endpoint()}/api/organizations/{org}/overview"
    try:
        data = http.get(url).json()
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 404:
            return Verdict(False, time.time(), f"{endpoint()} has no organisation {org!r}")
        raise _refusal(repo_id, f"could not check its publisher ({url}: {err})") from None
    except Exception as err:  # a transport failure: nothing learnt, nothing stored
        raise _refusal(
            repo_id, f"could not check its publisher ({url}: {type(err).__name__}: {err})"
        ) from None
    trusted = isinstance(data, dict) and data.get("trustedKernelPublisher") is True
    detail = "" if trusted else f"{endpoint()} does not mark {org!r} as a trusted kernel publisher"
    return Verdict(trusted, time.time(), detail)


def _refusal(repo_id: str, why: str) -> UntrustedKernelError:
    return UntrustedKernelError(
        f"refusing to load kernel repo {repo_id}: {why}. To load it anyway, pass "
        f"trust_remote_code=True or trust_remote_code=[{repo_id!r}] (for `kernels lock`, add "
        f'trust-remote-code = ["{repo_id}"] to [tool.kernels])'
    )


def fresh_verdict(rc: RepoCache) -> Verdict:
    """Ask the Hub about ``rc``'s organisation unless another thread or process just did; store
    the answer in memory and in ``rc``'s record."""
    import hashlib

    from filelock import FileLock

    from kernels.hub import endpoint

    ep = endpoint()
    org = rc.repo_id.split("/")[0]
    key = hashlib.sha256(f"{ep} {org}".encode()).hexdigest()[:16]
    lock_path = rc.root / ".locks" / "kernels-trust" / f"{key}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with FileLock(str(lock_path)):
        seen, _ = stored_verdict(rc)
        if seen is not None and seen.checked >= started:
            return seen  # asked by someone else while we waited
        verdict = _ask_hub(org, rc.repo_id)
        _save(rc, ep, verdict)
        with _memo_lock:
            _memo[(ep, org)] = verdict
    return verdict


def require_trusted(rc: RepoCache, trust_remote_code: object, *, downloading: bool) -> None:
    """Raise :class:`~kernels.errors.UntrustedKernelError` unless the repo of ``rc`` may be loaded.

    ``downloading`` says whether the load is about to fetch files: only then is a trusted verdict
    older than :func:`max_age` asked again (see the module docstring). Makes at most one request.
    """
    repo_id = rc.repo_id
    if allowed_by_caller(repo_id, trust_remote_code):
        return
    from kernels.hub import is_offline

    if is_offline():
        if repo_id not in _warned_offline:
            _warned_offline.add(repo_id)
            logger.warning(
                "Skipping the publisher trust check of %s: HF_HUB_OFFLINE is set, so only "
                "what is already in the cache can load",
                repo_id,
            )
        return
    verdict, recorded = stored_verdict(rc)
    stale = verdict is None or verdict.age >= max_age()
    if verdict is None or (stale and (downloading or not verdict.trusted)):
        verdict = fresh_verdict(rc)
    elif not recorded:  # this process knows it: record it for the processes that come next
        from kernels.hub import endpoint

        _save(rc, endpoint(), verdict)
    if not verdict.trusted:
        raise _refusal(repo_id, f"it is not from a trusted publisher ({verdict.detail})")
