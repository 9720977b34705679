"""The node as a pod meets it (NODE-1): the kubelet and the control plane's ports, probed from an unprivileged pod.

One restricted-compliant pod per usable node, pinned with nodeName, in a run namespace, with
a service account that has no rights and whose token only this pod mounts. Each pod asks its
plain-HTTP probes in one exec; HTTPS, which busybox cannot speak here, goes through busybox nc
relays the pod runs, the suite speaking TLS over a port-forward (nodeports.py); all in
parallel. Every refusal has a positive control: the same endpoint answers proper credentials (the API server's, through its node
proxy, for the kubelet; the admin's for the controller-manager and scheduler), and only an
answer counts as a refusal: no answer is never read as "refused". An endpoint no pod reaches is
not applicable, with the reason, never a pass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward

from pytest_k8ssec import admission as adm
from pytest_k8ssec import nodeports as npx
from pytest_k8ssec import rights
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.pods import exec_in, non_root_pod, waiting_reason
from pytest_k8ssec.waits import wait_for

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights
EXEC_TIMEOUT = 30


@dataclass
class Probed:
    """What every probe pod saw: each probe with its pod and result, and the positive controls' answers."""

    namespace: str
    account: str
    results: list[tuple[npx.Probe, npx.Seen, str]] = field(default_factory=list)  # probe, seen, pod
    control_plane: list[str] = field(default_factory=list)
    control_plane_unknown: str = ""
    relays: dict[str, dict[str, int]] = field(default_factory=dict)  # pod -> probe id -> relay port

    def rows(self, component: str) -> list[tuple[npx.Probe, npx.Seen, str]]:
        return [r for r in self.results if r[0].component == component]


def _node_address(node: Any) -> tuple[str, int]:
    ips = [a.address for a in node.status.addresses or [] if a.type == "InternalIP"]
    endpoint = node.status.daemon_endpoints.kubelet_endpoint if node.status.daemon_endpoints else None
    return (ips[0] if ips else ""), (endpoint.port if endpoint and endpoint.port else 10250)


def _control_plane_addresses(api: client.ApiClient) -> list[str]:
    """The API server's own addresses (the `kubernetes` Service's endpoints): where its control plane runs."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=kubernetes").items
    return sorted({a for s in slices for e in s.endpoints or [] for a in e.addresses or []})


@pytest.fixture(scope="module")
def probed(k8s_run, k8s_admin, k8s_cluster, k8s_profile, k8s_rights) -> Probed:
    if not k8s_cluster.node_names:
        k8s_rights.require(rights.LIST_NODES)  # an identity that may not list them knows no node: name the right
        pytest.skip("no usable node is known: the probe pods cannot be pinned")
    core = client.CoreV1Api(k8s_admin)
    ns = k8s_run.namespace("node", adm.psa_labels(k8s_profile.tenant_level))
    account = "no-rights"
    k8s_run.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": ns}})
    result = Probed(ns, f"system:serviceaccount:{ns}:{account}")
    try:
        result.control_plane = _control_plane_addresses(k8s_admin)
    except ApiException as exc:
        result.control_plane_unknown = f"the API server's endpoints could not be read ({exc.status} {exc.reason})"
    plans: list[tuple[str, list[npx.Probe], dict[str, int]]] = []
    for i, name in enumerate(k8s_cluster.node_names):
        pod_name = f"probe-{i}"
        address, port = _node_address(core.read_node(name))
        probes = npx.kubelet_probes(name, address, port, f"/exec/{ns}/{pod_name}/main?command=true") if address else []
        probes += npx.control_plane_probes(name, result.control_plane)
        relays = npx.relay_ports(probes)
        manifest = non_root_pod(pod_name, ns, k8s_cluster.images, service_account=account, node=name,
                                command=npx.relay_command(probes, relays))
        manifest["spec"]["automountServiceAccountToken"] = True  # this pod only: the token it shows the kubelet
        core.create_namespaced_pod(ns, manifest)
        plans.append((pod_name, probes, relays))
        result.relays[pod_name] = relays
    for pod_name, _, _ in plans:
        _wait_running(core, ns, pod_name)

    def plain(plan) -> list[tuple[npx.Probe, npx.Seen, str]]:
        """The pod's own plain-HTTP probes, all in one exec."""
        pod_name, probes, _ = plan
        probes = [p for p in probes if not p.tls]
        try:
            code, output = exec_in(k8s_admin, ns, pod_name, ["sh", "-c", npx.probe_script(probes)], timeout=EXEC_TIMEOUT)
        except Exception as exc:  # the exec itself failed: nothing from this pod can be judged
            return [(p, npx.Seen("error", detail=f"exec failed: {exc}"), pod_name) for p in probes]
        seen = npx.parse(output, probes)
        return [(p, seen[p.id], pod_name) for p in probes]

    def token(pod_name: str) -> str:
        code, out = exec_in(k8s_admin, ns, pod_name, ["cat", npx.TOKEN_PATH])
        return out.strip() if code == 0 else ""

    def tls(item) -> tuple[npx.Probe, npx.Seen, str]:
        """One HTTPS probe through the pod's relay: the connection starts in the pod, TLS is the suite's."""
        pod_name, p, relays, bearer = item
        local = relays[p.id]
        # portforward() swaps its ApiClient's call_api while it runs (as exec_in's stream does): a client of its own
        own = client.ApiClient(configuration=k8s_admin.configuration)
        try:
            forward = portforward(client.CoreV1Api(own).connect_get_namespaced_pod_portforward, pod_name, ns,
                                  ports=str(local))
        except Exception as exc:
            own.close()
            return p, npx.Seen("error", detail=f"port-forward to the relay failed: {exc}"), pod_name
        try:
            return p, npx.https_get(forward.socket(local), p, bearer), pod_name
        finally:
            forward.close()
            own.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        tokens = dict(zip([plan[0] for plan in plans], pool.map(token, [plan[0] for plan in plans])))
        items = [(pod_name, p, relays, tokens[pod_name]) for pod_name, probes, relays in plans for p in probes if p.tls]
        plain_parts = pool.map(plain, plans)
        result.results.extend(pool.map(tls, items))
        for part in plain_parts:
            result.results.extend(part)
    return result


def _wait_running(core: client.CoreV1Api, ns: str, name: str) -> None:
    def phase() -> str:
        pod = core.read_namespaced_pod(name, ns)
        reason, message = waiting_reason(pod)
        return f"{pod.status.phase} {reason} {message}".strip()

    wait_for(f"pod {ns}/{name} to be Running", phase, timeout=90, ready=lambda s: s.startswith("Running"))


def _table(rows: list[tuple[npx.Probe, npx.Seen, str]]) -> list[dict[str, str]]:
    return [npx.row(p, seen, pod) for p, seen, pod in rows]


def _wrong(rows: list[tuple[npx.Probe, npx.Seen, str]], probed: Probed) -> list[str]:
    return [f"GET {p.url} as {probed.account if p.as_whom == npx.TOKEN else p.as_whom} from pod {pod} on {p.node}: "
            f"expected {p.expected}, observed {seen}\n    repeat: "
            f"{npx.command(p, probed.namespace, pod, probed.relays.get(pod, {}).get(p.id))}"
            for p, seen, pod in rows if not npx.meets(p, seen)]


def _proxy_get(core: client.CoreV1Api, node: str, path: str) -> str:
    """The kubelet's `path` through the API server's node proxy (the API server's kubelet client credentials)."""
    try:
        resp = core.connect_get_node_proxy_with_path(node, path, _preload_content=False, _request_timeout=10)
        resp.read()
        return f"HTTP {resp.status}"
    except ApiException as exc:
        return f"HTTP {exc.status}"
    except urllib3.exceptions.HTTPError as exc:
        return f"no answer: {exc}"


@behaviour("NODE-1")
@needs(rights.EXEC, rights.PORT_FORWARD, rights.GET_NODES, rights.NODES_PROXY)
def test_kubelet_refuses_pods_without_proper_credentials(probed, k8s_admin, k8s_evidence):
    """Each node's kubelet answers a pod 401 without credentials and 403 to the pod's own token on /pods, /exec,
    /configz and /metrics; the same paths answer the API server's credentials (its node proxy; the probes' own exec)."""
    k8s_evidence["mechanism"] = (f"from a restricted pod per node (service account {probed.account}, no rights) to "
                                 "its node's InternalIP kubelet port: a busybox nc relay in the pod, TLS and HTTP by the "
                                 "suite over a port-forward; positive control: the API server's node proxy as the admin")
    rows = probed.rows("kubelet")
    reached = {p.node for p, seen, _ in rows if seen.answered}
    unreached = sorted({p.node for p, _, _ in rows} - reached)
    if not reached:
        not_applicable("no probe pod reached its node's kubelet port: "
                       + "; ".join(sorted({f"{p.node}: {seen}" for p, seen, _ in rows})) if rows
                       else "no node has an InternalIP to probe")
    core = client.CoreV1Api(k8s_admin)
    table = _table([r for r in rows if r[0].node in reached])
    for node in sorted(reached):
        for path in ("pods", "configz", "metrics"):
            table.append({"endpoint": f"GET /api/v1/nodes/{node}/proxy/{path}", "from": "the suite",
                          "as": "the admin (the API server's kubelet client credentials)", "expected": "HTTP 200",
                          "observed": _proxy_get(core, node, path)})
        failed_exec = [str(seen) for p, seen, _ in probed.results if p.node == node and "exec failed" in seen.detail]
        table.append({"endpoint": f"exec into the probe pod on {node}", "from": "the suite",
                      "as": "the admin (the API server's kubelet client credentials)", "expected": "runs",
                      "observed": failed_exec[0] if failed_exec else "runs (the pod's wget probes ran in it)"})
    for r in table:
        r.setdefault("verdict", "ok" if r["observed"].startswith(r["expected"]) else "WRONG")
    k8s_evidence["endpoints"] = table
    k8s_evidence["observed"] = ", ".join(f"{r['endpoint']} as {r['as']}: {r['observed']}" for r in table[:2]) + " ..."
    if unreached:
        k8s_evidence["not applicable"] = f"kubelet not reached from the pod on {', '.join(unreached)}"
    wrong = _wrong([r for r in rows if r[0].node in reached], probed)
    assert not wrong, "the kubelet does not refuse a pod as it must:\n" + "\n".join(wrong)
    controls = [r for r in table if r["from"] == "the suite" and r["verdict"] != "ok"]
    if controls:
        pytest.skip("positive control not observed (the kubelet did not answer the API server's credentials): "
                    + "; ".join(f"{r['endpoint']}: {r['observed']}" for r in controls))


@behaviour("NODE-1")
@needs(rights.EXEC, rights.GET_NODES)
def test_kubelet_read_only_port_does_not_answer(probed, k8s_evidence):
    """Port 10255 serves the kubelet's API with no authentication at all: from a pod it must not answer.

    Positive control: the same pod reached the same address's kubelet port (it answered there)."""
    k8s_evidence["mechanism"] = "busybox wget from a restricted pod per node to http://<InternalIP>:10255/pods"
    reached = {p.node for p, seen, _ in probed.rows("kubelet") if seen.answered}
    rows = [r for r in probed.rows("kubelet read-only port") if r[0].node in reached]
    if not rows:
        not_applicable("no probe pod reached its node's address (the kubelet's secure port did not answer either), "
                       "so a silent read-only port proves nothing")
    k8s_evidence["endpoints"] = _table(rows)
    k8s_evidence["observed"] = "; ".join(f"{p.node}: {seen}" for p, seen, _ in rows)
    wrong = _wrong(rows, probed)
    assert not wrong, "the kubelet's read-only port answers pods:\n" + "\n".join(wrong)


def _bearer(conf: client.Configuration) -> dict[str, str]:
    """The admin's token as a header, where the kubeconfig has one (a client certificate goes with the pool)."""
    token = (conf.api_key or {}).get("authorization") or (conf.api_key or {}).get("BearerToken")
    if not token:
        return {}
    return {"Authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}


def _admin_get(api: client.ApiClient, address: str, port: int, path: str) -> str:
    """GET a control-plane component's secure port from the suite with the admin's client credentials."""
    conf = api.configuration
    pool = urllib3.PoolManager(cert_reqs="CERT_NONE", cert_file=conf.cert_file, key_file=conf.key_file,
                               timeout=urllib3.Timeout(5), retries=False)
    try:
        return f"HTTP {pool.request('GET', npx.url(address, port, path), headers=_bearer(conf)).status}"
    except urllib3.exceptions.HTTPError as exc:
        return f"no answer: {type(exc).__name__}"
    finally:
        pool.clear()


PORTS = {"kube-controller-manager": npx.CONTROLLER_MANAGER_PORT, "kube-scheduler": npx.SCHEDULER_PORT}


@behaviour("NODE-1")
@needs(rights.EXEC, rights.PORT_FORWARD)
@pytest.mark.parametrize("component", ["etcd", "kube-controller-manager", "kube-scheduler"])
def test_control_plane_port_refuses_pods_without_credentials(component, probed, k8s_admin, k8s_evidence):
    """etcd's client port refuses a client without a certificate; the controller-manager's and scheduler's secure
    ports refuse /metrics and /configz without credentials. Where no pod reaches the port, not applicable."""
    k8s_evidence["mechanism"] = (f"from a restricted pod per node to {component}'s port on the API server's addresses "
                                 "(the `kubernetes` Service's endpoints): HTTPS through a busybox nc relay in the pod, "
                                 "plain HTTP by busybox wget")
    if not probed.control_plane:
        not_applicable(probed.control_plane_unknown or "the API server's addresses are unknown")
    rows = probed.rows(component)
    answered = [r for r in rows if r[1].answered]
    if not answered:
        not_applicable(f"{component}'s port is not reachable from pods on this cluster: "
                       + "; ".join(sorted({f"{p.url}: {seen}" for p, seen, _ in rows})))
    table = _table(answered)
    addresses = sorted({p.url.split("//")[1].rsplit(":", 1)[0].strip("[]") for p, _, _ in answered})
    for address in addresses:
        if component == "etcd":
            observed = _readyz_etcd(k8s_admin)
            table.append({"endpoint": "GET /readyz/etcd on the API server", "from": "the suite",
                          "as": "the admin (etcd answers the API server's client certificate)", "expected": "HTTP 200",
                          "observed": observed, "verdict": "ok" if observed == "HTTP 200" else "WRONG"})
            continue
        for path in ("/metrics", "/configz"):
            observed = _admin_get(k8s_admin, address, PORTS[component], path)
            table.append({"endpoint": f"GET {npx.url(address, PORTS[component], path)}", "from": "the suite",
                          "as": "the admin's credentials", "expected": "HTTP 200", "observed": observed,
                          "verdict": "ok" if observed == "HTTP 200" else "WRONG"})
    k8s_evidence["endpoints"] = table
    k8s_evidence["observed"] = "; ".join(f"{p.url}: {seen}" for p, seen, _ in answered)
    wrong = _wrong(answered, probed)
    assert not wrong, f"{component} serves pods without credentials:\n" + "\n".join(wrong)
    controls = [r for r in table if r["from"] == "the suite" and r["verdict"] != "ok"]
    if controls:
        pytest.skip(f"positive control not observed ({component} did not answer proper credentials from the suite): "
                    + "; ".join(f"{r['endpoint']}: {r['observed']}" for r in controls))


def _readyz_etcd(api: client.ApiClient) -> str:
    """The API server's check of etcd, which it reaches with its own client certificate: etcd's positive control."""
    try:
        resp = api.rest_client.request("GET", f"{api.configuration.host}/readyz/etcd", headers=_bearer(api.configuration),
                                       _request_timeout=10)
        return f"HTTP {resp.status}"
    except ApiException as exc:
        return f"HTTP {exc.status}"
