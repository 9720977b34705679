"""Pod manifests the cases create, as plain dicts built from the cluster's images."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from .handle import Images
from .waits import wait_for

SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def _container(images: Images, image: str, security: dict[str, Any], command: list[str] | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": images.pull_policy,
                                 "securityContext": security}
    if command:
        container["command"] = command
    return container


def pod(name: str, namespace: str, images: Images, *, image: str | None = None, security: dict[str, Any] | None = None,
        pod_security: dict[str, Any] | None = None, command: list[str] | None = SLEEP, labels: dict[str, str] | None = None,
        service_account: str | None = None, host_network: bool = False, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {  # copies: callers pass shared templates and may change what they get back
        "containers": [_container(images, image or images.busybox, copy.deepcopy(security or {}), command)],
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
    }
    if pod_security:
        spec["securityContext"] = copy.deepcopy(pod_security)
    if service_account:
        spec["serviceAccountName"] = service_account
    if host_network:
        spec["hostNetwork"] = True
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})}, "spec": spec}


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
NON_ROOT_POD = {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}


def non_root_pod(name: str, namespace: str, images: Images, **kw: Any) -> dict[str, Any]:
    """The seeds' non-root pod (runAsUser 1000, fsGroup 2000, no privilege escalation), restricted-compliant."""
    return pod(name, namespace, images, image=images.busybox_nonroot, security=RESTRICTED_CONTAINER,
               pod_security=NON_ROOT_POD, **kw)


def server_pod(name: str, namespace: str, images: Images, ports: dict[str, int], **kw: Any) -> dict[str, Any]:
    """A probe target serving `ports` (name -> number), restricted-compliant, Ready once its first port answers.

    Its root filesystem stays writable: public busybox serves from a directory it makes itself.
    """
    manifest = pod(name, namespace, images, image=images.httpd, command=list(images.httpd_command) or None,
                   security={k: v for k, v in RESTRICTED_CONTAINER.items() if k != "readOnlyRootFilesystem"},
                   pod_security=NON_ROOT_POD, **kw)
    container = manifest["spec"]["containers"][0]
    container["ports"] = [{"containerPort": number, "name": port_name} for port_name, number in ports.items()]
    if ports:
        container["readinessProbe"] = {"tcpSocket": {"port": next(iter(ports.values()))}, "periodSeconds": 1}
    return manifest


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def privileged_pod(name: str, namespace: str, images: Images, **kw: Any) -> dict[str, Any]:
    """The seeds' escape: privileged, on the host network, so it sees the node's interfaces."""
    return pod(name, namespace, images, security={"privileged": True}, host_network=True, **kw)


def root_image_pod(name: str, namespace: str, images: Images, **kw: Any) -> dict[str, Any]:
    """Restricted-compliant except that its image runs as root and no runAsUser overrides it (PSP-5)."""
    return pod(name, namespace, images, image=images.root_user, security=RESTRICTED_CONTAINER,
               pod_security={"seccompProfile": {"type": "RuntimeDefault"}}, **kw)


def create_and_wait_running(core: Any, manifest: dict[str, Any], timeout: float = 60) -> Any:
    """Create a pod and wait until it runs; a pod that cannot start is reported with its reason."""
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    core.create_namespaced_pod(ns, manifest)
    seen: dict[str, Any] = {}

    def phase() -> str:
        seen["pod"] = pod = core.read_namespaced_pod(name, ns)
        reason, message = waiting_reason(pod)
        return f"{pod.status.phase} {reason} {message}".strip()

    wait_for(f"pod {ns}/{name} to be Running", phase, timeout=timeout, ready=lambda s: s.startswith("Running"))
    return seen["pod"]


def waiting_reason(pod: Any) -> tuple[str, str]:
    """The (reason, message) a pod's first container is waiting with, or ('', '')."""
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting:
            return status.state.waiting.reason or "", status.state.waiting.message or ""
    return "", ""


def exec_in(api: Any, namespace: str, pod_name: str, command: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run a command in a pod's container; return its exit code and combined output."""
    # stream() swaps the ApiClient's call_api while it runs: give it its own client, or calls that
    # other threads make on the shared one at that moment turn into websocket requests.
    own = client.ApiClient(configuration=api.configuration)
    resp = stream(client.CoreV1Api(own).connect_get_namespaced_pod_exec, pod_name, namespace, command=command,
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=timeout)
    output = resp.read_stdout() + resp.read_stderr()
    code = resp.returncode
    resp.close()
    own.close()
    return (code if code is not None else -1), output
