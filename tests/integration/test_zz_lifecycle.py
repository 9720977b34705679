"""The local cluster leaves the machine as it found it: after `down` nothing of it remains.

Named to run last: it stops the session's cluster, then starts it again for whatever follows.
"""

from __future__ import annotations

import socket
import subprocess
import sys

from kubernetes import client

from pytest_k8ssec.kube import api_client
from pytest_k8ssec.local import hostnet
from pytest_k8ssec.local.layout import PORTS
from pytest_k8ssec.pods import create_and_wait_running, pod
from pytest_k8ssec.profile import load_profile


def test_down_leaves_no_processes_mounts_links_rules_or_cgroups(local_cluster):
    # A running pod first, so there are shims, a netns, a veth and pod cgroups to remove. Its
    # namespace needs no run label: `down` deletes the whole cluster, etcd data included.
    core = client.CoreV1Api(api_client(str(local_cluster.layout.admin_kubeconfig)))
    core.create_namespace({"metadata": {"name": "lifecycle-check"}})
    create_and_wait_running(core, pod("sleeper", "lifecycle-check", local_cluster.handle().images))
    netns_before_cluster: list[str] = []  # the cluster's own netns are all named cni-*
    assert hostnet.leftovers(local_cluster.run_dir, netns_before_cluster), "a running cluster shows its traces"

    local_cluster.down()
    try:
        assert hostnet.leftovers(local_cluster.run_dir, netns_before_cluster) == []
        assert not local_cluster.run_dir.exists()
        port_in_use_is_one_clear_line_and_starts_nothing(local_cluster)
    finally:
        local_cluster.up(load_profile())


def port_in_use_is_one_clear_line_and_starts_nothing(local_cluster) -> None:
    """Another program on the API server's port: `up` says which port and what to do, and starts nothing."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", PORTS["kube-apiserver"]))
        holder.listen()
        proc = subprocess.run([sys.executable, "-m", "pytest_k8ssec.local", "up"], capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"error: ports needed by the local cluster are in use: {PORTS['kube-apiserver']} (kube-apiserver)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert hostnet.leftovers(local_cluster.run_dir, []) == []
