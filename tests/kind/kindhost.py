"""What Docker and kind show on the host (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_k8ssec.cluster.kind import KIND_VERSION


def kind_clusters(real_cache: Path) -> list[str]:
    """The kind clusters that exist."""
    out = subprocess.run([str(real_cache / "kind" / f"kind-{KIND_VERSION}"), "get", "clusters"], capture_output=True, text=True)
    return out.stdout.split()


def node_containers(cluster: str) -> list[str]:
    """The node containers of one kind cluster."""
    out = subprocess.run(["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()
