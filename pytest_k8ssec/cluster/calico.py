"""Installing Calico on a cluster the plugin created, then waiting until it enforces NetworkPolicy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from .. import progress
from ..errors import K8sSecError
from ..kube import api_client
from ..pods import waiting_reason
from ..waits import WaitTimeout, wait_for

READY_TIMEOUT = 300


PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff")


def install_calico(kubeconfig: Path, context: str, objects: list[dict[str, Any]], mirror: str | None = None) -> list[str]:
    """Apply Calico unless calico-node already runs (a kept cluster); return the Ready nodes' names.

    An image that cannot be pulled ends the wait at once: no retry will find a registry that is
    not there.
    """
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
    progress.say("Calico installed: waiting for kube-system's DaemonSets and Deployments (calico-node on every node, CoreDNS)")
    try:
        core = client.CoreV1Api(api)
        wait_for("every kube-system DaemonSet and Deployment to be ready", lambda: _kube_system_state(apps, core, mirror),
                 timeout=READY_TIMEOUT, interval=0.5, max_interval=1, ready=lambda s: s == "ready")
        return wait_for("every node to be Ready", lambda: _ready_nodes(api), timeout=READY_TIMEOUT,
                        interval=0.5, max_interval=1, ready=lambda nodes: bool(nodes) and None not in nodes)
    except WaitTimeout as exc:
        raise K8sSecError(f"Calico did not become ready: {exc}; {_why_not_ready(api)}") from None


def _kube_system_state(apps: client.AppsV1Api, core: client.CoreV1Api, mirror: str | None) -> str:
    """"ready" once calico-node runs and every kube-system workload has all its pods ready.

    The cluster is handed out only then: a new cluster whose CoreDNS or calico-kube-controllers
    is still starting would fail PRIV-2 (kube-system's workloads keep all their pods) for our reasons.
    """
    _raise_on_pull_failure(core, mirror)
    waiting = [f"DaemonSet {d.metadata.name}: {d.status.number_ready or 0}/{d.status.desired_number_scheduled or 0} ready"
               for d in apps.list_namespaced_daemon_set("kube-system").items
               if (d.status.number_ready or 0) != (d.status.desired_number_scheduled or 0)
               or (d.metadata.name == "calico-node" and not d.status.desired_number_scheduled)]
    waiting += [f"Deployment {d.metadata.name}: {d.status.ready_replicas or 0}/{d.spec.replicas} ready"
                for d in apps.list_namespaced_deployment("kube-system").items
                if (d.status.ready_replicas or 0) != d.spec.replicas]
    return "; ".join(waiting) or "ready"


def _raise_on_pull_failure(core: client.CoreV1Api, mirror: str | None) -> None:
    """One line naming the image a kube-system pod cannot pull, and the option that fixes it."""
    for pod in core.list_namespaced_pod("kube-system").items:
        for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason in PULL_FAILURES:
                where = f"through the mirror {mirror}" if mirror else "with no registry mirror"
                raise K8sSecError(
                    f"node {pod.spec.node_name} cannot pull {status.image} for {pod.metadata.name} ({where}: "
                    f"{waiting.reason}); pass --k8s-sec-registry-mirror HOST:PORT with a registry that serves it, "
                    "or --k8s-sec-calico-manifest with images your nodes can pull")


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
