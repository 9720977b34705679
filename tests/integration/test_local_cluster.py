"""The local cluster is a real cluster: pods, exec, Services, NetworkPolicy, CSRs, admission, audit."""

from __future__ import annotations

import json

from kubernetes import client

from pytest_k8ssec.handle import Images
from pytest_k8ssec.pods import create_and_wait_running, exec_in, pod, privileged_pod
from pytest_k8ssec.users import KeyStore, create_user, whoami
from pytest_k8ssec.waits import wait_for


def images(local_cluster) -> Images:
    return local_cluster.handle().images


def probe(admin, ns, source, url) -> str:
    code, out = exec_in(admin, ns, source, ["sh", "-c", f"timeout 3 wget -q -O - {url}; echo rc=$?"])
    return out


def test_pod_runs_from_local_image_and_exec_works(run, admin, local_cluster):
    ns = run.namespace("pods")
    create_and_wait_running(client.CoreV1Api(admin), pod("bb", ns, images(local_cluster)))
    code, out = exec_in(admin, ns, "bb", ["sh", "-c", "id; echo hello"])
    assert code == 0 and "uid=0(root)" in out and "hello" in out, out


def test_service_cluster_ip_answers_and_default_deny_blocks_then_restores(run, admin, local_cluster):
    core, net = client.CoreV1Api(admin), client.NetworkingV1Api(admin)
    ns = run.namespace("net")
    img = images(local_cluster)
    web = create_and_wait_running(core, pod("web", ns, img, image=img.httpd, command=None, labels={"app": "web"}))
    create_and_wait_running(core, pod("client", ns, img))
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    cluster_ip = svc.spec.cluster_ip
    wait_for("the Service to answer", lambda: probe(admin, ns, "client", f"http://{cluster_ip}/"), timeout=30,
             ready=lambda out: "k8ssec" in out and "rc=0" in out)
    pod_url = f"http://{web.status.pod_ip}:8080/"
    assert "rc=0" in probe(admin, ns, "client", pod_url)
    net.create_namespaced_network_policy(ns, {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    blocked = wait_for("default-deny to block", lambda: probe(admin, ns, "client", pod_url), timeout=30,
                       ready=lambda out: "rc=0" not in out)
    assert "rc=139" not in blocked, f"the probe crashed instead of being blocked: {blocked}"
    net.delete_namespaced_network_policy("deny", ns)
    wait_for("traffic to flow again", lambda: probe(admin, ns, "client", pod_url), timeout=30, ready=lambda out: "rc=0" in out)


def test_csr_for_apiserver_client_signer_is_signed_and_authenticates(run, admin):
    keys = KeyStore()
    try:
        user = create_user(run, admin, keys, "carol", ["testers"], "carol")
        assert oct(keys.path.stat().st_mode & 0o777) == "0o700"
        assert oct(user.kubeconfig.stat().st_mode & 0o777) == "0o600"
        assert whoami(user.api()) == ("carol", ["system:authenticated", "testers"])
    finally:
        keys.close()
    assert not keys.path.exists()


def test_privileged_pod_rejected_in_baseline_namespace(run, admin, local_cluster):
    ns = run.namespace("baseline", {"pod-security.kubernetes.io/enforce": "baseline"})
    manifest = privileged_pod("priv", ns, images(local_cluster))
    try:
        client.CoreV1Api(admin).create_namespaced_pod(ns, manifest, dry_run="All")
        raise AssertionError("a privileged pod was admitted in a baseline namespace")
    except client.ApiException as exc:
        assert exc.status == 403 and "violates PodSecurity" in json.loads(exc.body)["message"]


def test_request_covered_by_audit_policy_is_logged(run, admin, local_cluster):
    ns = run.namespace("audit")
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(ns, pod("audited", ns, images(local_cluster)))
    log = local_cluster.layout.audit_log

    def logged() -> bool:
        return any(f'"namespace":"{ns}"' in line and '"verb":"create"' in line and '"resource":"pods"' in line
                   for line in log.read_text().splitlines())

    wait_for("the pod create to be audited", logged, timeout=30)
