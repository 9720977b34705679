"""Installing Calico on a cluster the plugin created, then waiting until it enforces NetworkPolicy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from ..errors import K8sSecError
from ..kube import api_client
from ..pods import waiting_reason
from ..waits import WaitTimeout, wait_for

READY_TIMEOUT = 300


def install_calico(kubeconfig: Path, context: str, objects: list[dict[str, Any]]) -> list[str]:
    """Apply Calico unless calico-node already runs (a kept cluster); return the Ready nodes' names."""
    api = api_client(str(kubeconfig), context)
    apps = client.AppsV1Api(api)
    try:
        apps.read_namespaced_daemon_set("calico-node", "kube-system")
    except ApiException as exc:
        if exc.status != 404:
            raise
        try:
            utils.create_from_yaml(api, yaml_objects=objects)
        except utils.FailToCreateError as exc:
            conflicts = [e for e in exc.api_exceptions if e.status != 409]
            if conflicts:
                raise K8sSecError(f"installing Calico failed: {conflicts[0].reason}: {conflicts[0].body}") from None
    try:
        wait_for("calico-node to be ready on every node", lambda: _calico_state(apps), timeout=READY_TIMEOUT,
                 interval=2, max_interval=5, ready=lambda s: s == "ready")
        return wait_for("every node to be Ready", lambda: _ready_nodes(api), timeout=READY_TIMEOUT,
                        interval=2, max_interval=5, ready=lambda nodes: bool(nodes) and None not in nodes)
    except WaitTimeout as exc:
        raise K8sSecError(f"Calico did not become ready: {exc}; {_why_not_ready(api)}") from None


def _calico_state(apps: client.AppsV1Api) -> str:
    status = apps.read_namespaced_daemon_set("calico-node", "kube-system").status
    if status.desired_number_scheduled and status.number_ready == status.desired_number_scheduled:
        return "ready"
    return f"{status.number_ready or 0}/{status.desired_number_scheduled or 0} calico-node pods ready"


def _ready_nodes(api: client.ApiClient) -> list[str | None]:
    """Node names, with None for a node that is not Ready yet."""
    names: list[str | None] = []
    for node in client.CoreV1Api(api).list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        names.append(node.metadata.name if ready else None)
    return names


def _why_not_ready(api: client.ApiClient) -> str:
    """The waiting or failure reasons of kube-system pods that are not running, for the error line."""
    reasons = []
    for pod in client.CoreV1Api(api).list_namespaced_pod("kube-system").items:
        reason, message = waiting_reason(pod)
        if reason:
            reasons.append(f"{pod.metadata.name}: {reason} {message}".strip())
    return "; ".join(reasons[:5]) or "no kube-system pod reports a reason"
