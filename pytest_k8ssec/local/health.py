"""Whether the local cluster's components answer: health endpoints, the API server, the node.

Every wait also checks that no component has exited, so a crash ends it at once with the
component's log instead of a timeout.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from typing import Callable

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..errors import K8sSecError
from ..kube import api_client
from ..waits import wait_for
from . import components, processes
from .layout import Layout
from .processes import State

_UNVERIFIED = ssl._create_unverified_context()  # the components' own health endpoints: self-signed, on localhost


def http_ok(url: str) -> bool:
    """A component's health endpoint answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=_UNVERIFIED) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def admin(lay: Layout) -> client.ApiClient:
    """The cluster's admin, for a server that may still be starting (the waits retry, not the client)."""
    return api_client(str(lay.admin_kubeconfig), retry=False)


def api_ready(lay: Layout) -> bool:
    if not lay.admin_kubeconfig.exists():
        return False
    try:
        return admin(lay).rest_client.request("GET", f"{lay.api_server}/readyz", _request_timeout=2).status == 200
    except (ApiException, urllib3.exceptions.HTTPError):
        return False


def check_alive(lay: Layout, state: State) -> None:
    dead = [name for name, pid in state.pids.items() if not processes.alive(pid)]
    if dead:
        raise K8sSecError(f"local cluster component {dead[0]} exited; its log: {lay.logs / (dead[0] + '.log')}\n"
                          + processes.log_tail(lay.logs / f"{dead[0]}.log", dead[0]))


def wait_started(name: str, lay: Layout, state: State) -> float:
    """Wait until a component answers (the API server's readyz, containerd's socket, else its health URL, if
    it has one: kube-proxy is seen working through the node); the seconds."""
    url = components.HEALTH.get(name)
    if name == "kube-apiserver":
        check: Callable[[], bool] = lambda: api_ready(lay)  # noqa: E731
    elif name == "containerd":
        check = lay.containerd_socket.exists
    elif url:
        check = lambda: http_ok(url)  # noqa: E731
    else:
        return 0.0

    def probe() -> bool:
        check_alive(lay, state)
        return check()

    started = time.monotonic()
    wait_for(f"{name} of the local cluster to answer", probe, timeout=90, interval=0.1, max_interval=0.5)
    return time.monotonic() - started


def node_condition(lay: Layout, state: State) -> str | None:
    """The node's Ready condition ("True", "False", "Unknown", "" before it has one), or None while it is not registered."""
    check_alive(lay, state)
    try:
        node = client.CoreV1Api(admin(lay)).read_node(lay.node_name)
    except ApiException:
        return None
    return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "")


def wait_node(what: str, lay: Layout, state: State, ready: Callable[[str | None], bool], timeout: float) -> float:
    """Wait for the node to be `what` (kube-router exits at once if its Node object does not exist yet); the seconds."""
    started = time.monotonic()
    wait_for(f"node {lay.node_name} to be {what}", lambda: node_condition(lay, state), timeout=timeout,
             interval=0.1, max_interval=0.5, ready=ready)
    return time.monotonic() - started


def kubelet_pods(lay: Layout) -> set[str]:
    """The pods the kubelet itself knows: its /pods, through the API server's node proxy."""
    resp = admin(lay).rest_client.request("GET", f"{lay.api_server}/api/v1/nodes/{lay.node_name}/proxy/pods",
                                          _request_timeout=5)
    resp.read()
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in json.loads(resp.data).get("items") or []}  # null while it knows none


def wait_kubelet_synced(lay: Layout, state: State, timeout: float = 60) -> None:
    """After a kubelet restart, until it knows again every running pod the API server places on the node.

    Until then an exec into one of them fails with "pod does not exist" (seen after an upgrade).
    """
    core = client.CoreV1Api(admin(lay))

    def unknown() -> set[str]:
        check_alive(lay, state)
        running = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={lay.node_name},status.phase=Running")
        return {f"{p.metadata.namespace}/{p.metadata.name}" for p in running.items} - kubelet_pods(lay)

    wait_for("the restarted kubelet to know the node's running pods", unknown, timeout=timeout, interval=0.2,
             max_interval=1.0, ready=lambda missing: not missing, retry_on=(ApiException, urllib3.exceptions.HTTPError))
