"""Start a local Hub, publish the example kernels to it, and run examples/basic.py against it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "kernels"))


def main() -> int:
    import build as example_build
    from kernels.server import HubServer

    with (
        tempfile.TemporaryDirectory(prefix="kernels-demo-") as tmp,
        HubServer(Path(tmp) / "hub", trusted_orgs=["kernels-community"]) as hub,
    ):
        print(f"local Hub at {hub.endpoint}", flush=True)
        backends = ["cpu"]
        if os.environ.get("KERNELS_DEMO_CUDA") == "1":
            backends.append("cuda")
        published = example_build.publish_examples(hub.endpoint, backends=backends)
        for repo, commit in published.items():
            print(f"published {repo} @ {commit[:12]}", flush=True)
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HUB_CACHE": str(Path(tmp) / "cache"),
            "HF_TOKEN": "hf_local_demo_token",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        print("running examples/basic.py", flush=True)
        return subprocess.call([sys.executable, str(ROOT / "examples" / "basic.py")], env=env)


if __name__ == "__main__":
    raise SystemExit(main())
