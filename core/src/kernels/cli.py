"""The ``kernels`` command line (also installed as ``kernel``).

Each subcommand's work lives in the library; this module only parses arguments, calls it and turns
:class:`~kernels.errors.KernelsError` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kernels import __version__
from kernels.errors import KernelsError


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _cmd_serve(args: argparse.Namespace) -> int:
    from kernels.server import serve_forever

    serve_forever(
        Path(args.root),
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        trusted_orgs=args.trust_org,
        rate_limit=args.rate_limit,
    )
    return 0


def _port(text: str) -> int:
    """An argparse type: a TCP port number (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give 0-65535 (0 picks a free one)"
        )
    return port


def _cmd_lock(args: argparse.Namespace) -> int:
    from kernels.project import check_command, lock_command

    if args.check:
        return check_command(Path(args.dir))
    return lock_command(Path(args.dir), upgrade=args.upgrade)


def _cmd_check(args: argparse.Namespace) -> int:
    from kernels.project import check_command

    target = Path(args.dir)
    if not target.is_dir() and args.dir.count("/") == 1 and not args.dir.startswith((".", "/")):
        # kernels 0.17's `check REPO` checked a kernel's ABI; that is kernel-builder's job now.
        print(
            f"error: `kernels check` checks that DIR/kernels.lock is up to date, and {args.dir} "
            "is not a folder; to check a kernel repository's ABI compliance (what "
            "`kernels check REPO` did in kernels 0.17), use `kernel-builder check-abi`",
            file=sys.stderr,
        )
        return 2
    return check_command(target)


def _cmd_download(args: argparse.Namespace) -> int:
    from kernels.project import download_command

    return download_command(Path(args.dir), all_variants=args.all_variants)


def _cmd_add(args: argparse.Namespace) -> int:
    from kernels.edit import add_command

    return add_command(Path(args.dir), args.kernels, revision=args.revision)


def _cmd_remove(args: argparse.Namespace) -> int:
    from kernels.remove import remove_command

    return remove_command(Path(args.dir), args.kernels)


def _cmd_outdated(args: argparse.Namespace) -> int:
    from kernels.outdated import outdated_command

    return outdated_command(Path(args.dir), as_json=args.json)


def _cmd_versions(args: argparse.Namespace) -> int:
    from kernels.inspect import versions_command

    return versions_command(args.repo_id, as_json=args.json)


def _cmd_info(args: argparse.Namespace) -> int:
    from kernels.inspect import info_command

    return info_command(
        args.repo_id, revision=args.revision, version=args.kernel_version, as_json=args.json
    )


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from kernels.benchrun import benchmark_command

    return benchmark_command(
        args.repo_id,
        revision=args.revision,
        version=args.kernel_version,
        iterations=args.iterations,
        warmup=args.warmup,
        as_json=args.json,
        output=Path(args.output) if args.output else None,
        visual=Path(args.visual) if args.visual else None,
        trust_remote_code=args.trust_remote_code,
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``kernels`` command (the docs' CLI reference uses it)."""
    parser = argparse.ArgumentParser(
        prog="kernels",
        description="Load compute kernels from the Hugging Face Hub and lock them like packages.",
    )
    parser.add_argument("--version", action="version", version=f"kernels {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, help: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add(
        "serve", "Serve git repositories under ROOT as a Hub-compatible HTTP endpoint.", _cmd_serve
    )
    p.add_argument("root", metavar="ROOT", help="folder holding the bare git repositories")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=0, help="port to bind; 0 picks a free one (default)"
    )
    p.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every answer by this many milliseconds"
    )
    p.add_argument(
        "--rate-limit",
        type=_positive_float,
        default=None,
        metavar="N",
        help="answer at most N requests per second (bursts of one second's worth); beyond, "
        "429 with Retry-After, as the Hub does",
    )
    p.add_argument(
        "--trust-org",
        action="append",
        default=[],
        metavar="ORG",
        help="mark ORG as a trusted kernel publisher (repeatable; '*': every organisation; "
        "also read from ROOT/trusted-orgs)",
    )

    p = add("lock", "Resolve [tool.kernels.dependencies] and write DIR/kernels.lock.", _cmd_lock)
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: .)")
    p.add_argument(
        "--upgrade",
        nargs="*",
        metavar="REPO",
        default=None,
        help="move locked commits to the newest match (all, or only the named repos)",
    )
    p.add_argument(
        "--check", action="store_true", help="only check that kernels.lock is up to date (offline)"
    )

    p = add(
        "check",
        "Exit 1 when DIR/kernels.lock does not match the dependencies (offline). Not the ABI "
        "check of kernels 0.17 (`kernel-builder check-abi` does that).",
        _cmd_check,
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: .)")

    p = add(
        "download", "Download the locked kernels of DIR into the cache, verified.", _cmd_download
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: .)")
    p.add_argument(
        "--all-variants",
        action="store_true",
        help="download every build variant, not only the one this interpreter loads",
    )

    p = add(
        "add",
        "Add kernels to [tool.kernels.dependencies] (formatting kept) and lock them.",
        _cmd_add,
    )
    p.add_argument(
        "kernels",
        nargs="+",
        metavar="ORG/NAME[@SPEC]",
        help="SPEC: N (branch vN) or a version specifier; default: the newest vN branch or tag",
    )
    p.add_argument("--revision", default=None, help="lock this branch, tag or commit instead")
    p.add_argument("--dir", default=".", help="project folder (default: .)")

    p = add(
        "remove",
        "Remove kernels from [tool.kernels.dependencies] and kernels.lock (offline).",
        _cmd_remove,
    )
    p.add_argument("kernels", nargs="+", metavar="ORG/NAME", help="the kernels to remove")
    p.add_argument("--dir", default=".", help="project folder (default: .)")

    p = add(
        "outdated",
        "Compare each locked kernel with the newest match of its spec (what --upgrade would do).",
        _cmd_outdated,
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: .)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add(
        "versions",
        "List the versions (tags and vN branches) a kernel repo offers, with each one's build "
        "variants.",
        _cmd_versions,
    )
    p.add_argument("repo_id", metavar="REPO", help="org/name")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add(
        "info",
        "Show a kernel's metadata, its build variants and which one this interpreter loads.",
        _cmd_info,
    )
    p.add_argument(
        "repo_id", metavar="REPO|PATH", help="org/name, or a local kernel repo or variant folder"
    )
    p.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    p.add_argument(
        "--version", dest="kernel_version", type=int, default=None, help="branch vN (int)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add(
        "benchmark",
        "Run a kernel repo's benchmarks/benchmark*.py scripts and report the timings.",
        _cmd_benchmark,
    )
    p.add_argument(
        "repo_id",
        metavar="REPO|PATH",
        help="org/name (org/name@REV also works), or a local kernel folder",
    )
    p.add_argument("--revision", "--branch", default=None, help="branch, tag or commit")
    p.add_argument(
        "--version", dest="kernel_version", type=int, default=None, help="branch vN (int)"
    )
    p.add_argument("--iterations", type=int, default=100, help="timed calls per workload")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--output", default=None, metavar="FILE", help="also write the JSON to FILE")
    p.add_argument(
        "--visual", default=None, metavar="BASE", help="draw a PNG bar chart to BASE.png"
    )
    p.add_argument(
        "--rasterized",
        action="store_true",
        help="accepted for kernels 0.17 scripts: the chart is always a PNG",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load the kernel even if its publisher is not trusted",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KernelsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file or folder the library did not name itself
        from kernels.fsutil import describe_os_error

        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
