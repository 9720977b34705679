"""Upgrading the running local cluster in place, and which release each component runs.

etcd's data and every object stay; each Kubernetes component restarts on the new binaries, in
the order Kubernetes documents (its version skew policy), one minor version at a time. The
components that are not Kubernetes' own (etcd, containerd, CoreDNS, kube-router) keep running.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import K8sSecError
from . import health
from .build import KUBERNETES_COMMANDS, check_upgrade
from .cluster import LocalCluster

# The API server, then the controllers, then the node.
UPGRADE_ORDER = (("kube-apiserver",), ("kube-controller-manager", "kube-scheduler"), ("kubelet", "kube-proxy"))


def upgrade(cluster: LocalCluster, to_version: str) -> None:
    """Restart each component of UPGRADE_ORDER on `to_version`'s binaries; its timings go into `cluster.timings`."""
    if not cluster.is_up():
        raise K8sSecError("the local cluster is not running: start it on the older release first "
                          "(`python -m pytest_k8ssec.local up --k8s-version VERSION`)")
    state = cluster.state()
    check_upgrade(state.version, to_version)
    cluster.k8s_version = to_version
    plan = cluster.plan(cluster.build())
    for group in UPGRADE_ORDER:
        start = time.monotonic()
        for name in group:
            for path, text in plan[name].files.items():
                path.write_text(text)
            state = cluster.state()
            state.argv[name] = plan[name].argv
            state.save(cluster.layout.state_file)
            cluster.start_component(name)
        cluster.timings[f"upgrade {', '.join(group)}"] = time.monotonic() - start
    state = cluster.state()
    state.version = to_version
    state.save(cluster.layout.state_file)
    cluster.timings["node ready"] = health.wait_node("Ready", cluster.layout, state, lambda s: s == "True", 120)


def versions(cluster: LocalCluster) -> dict[str, str]:
    """The release each Kubernetes component runs, read from its recorded command line."""
    return {name: Path(argv[0]).parent.name.removeprefix("cluster-")
            for name, argv in cluster.state().argv.items() if name in KUBERNETES_COMMANDS}
