"""A local, Hub-compatible HTTP server over bare git repositories (standard library and git only).

The unmodified ``huggingface_hub`` client works against it (``HfApi(endpoint=server.endpoint)``):
repos, commits, branches, tags, trees and file downloads (with ``Range``). One bare repository per
Hub repo lives under ``ROOT/{models,datasets,spaces,kernels}/{org}/{name}.git``. Files are always
plain git blobs: no LFS, no xet.

Modules: :mod:`~kernels.server.names` (validation), :mod:`~kernels.server.gitstore` (git),
:mod:`~kernels.server.routes` (the Hub API), :mod:`~kernels.server.handler` (HTTP),
:mod:`~kernels.server.control` (latency, request log, faults), :mod:`~kernels.server.server`
(:class:`HubServer`, :func:`serve_forever`).
"""

from __future__ import annotations

from kernels.server.control import RequestRecord
from kernels.server.server import HubServer, serve_forever

__all__ = ["HubServer", "RequestRecord", "serve_forever"]
