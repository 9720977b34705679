"""The suite on kind + Calico, every image built here and served by the kit's registry mirror.

In file order: without the mirror the run stops at once with one line; with it the whole suite
passes on a kept cluster; then Calico's enforcement is broken on that cluster (felix stopped, its
chains flushed on every node) and the NetworkPolicy deny cases fail with their tables.

Found with this control: calico-node sets its node's NetworkUnavailable condition when it stops,
so the node is tainted and no new pod is scheduled; the control clears the condition, as a
felix that crashed (rather than stopped) would leave it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from kubernetes import client

from pytest_k8ssec.cluster.kind import KIND_VERSION
from pytest_k8ssec.incluster import image, job
from pytest_k8ssec.incluster.manifest import Names, objects
from pytest_k8ssec.kube import api_client
from pytest_k8ssec.profile import default_profile_path
from pytest_k8ssec.waits import wait_for

from kindhost import kind_clusters, node_containers

# Every iptables rule and chain of Calico's, in both backends, gone at once (iptables-restore is atomic).
FLUSH_CALICO = "for v in legacy nft; do iptables-$v-save | grep -v cali > /tmp/rules && iptables-$v-restore < /tmp/rules; done"


WHOLE_SUITE: dict = {}  # the whole suite's report from outside, which the in-cluster run's verdicts are compared with


def test_without_a_mirror_the_run_stops_with_one_line_naming_the_image(kind_suite, real_cache):
    before = kind_clusters(real_cache)
    result = kind_suite(without="--k8s-sec-registry-mirror")
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()
    lines = [line for line in output.splitlines() if "cannot pull" in line]
    assert len(lines) == 1 and "Traceback" not in output, output[-3000:]
    assert "quay.io/calico/" in lines[0] and "with no registry mirror" in lines[0], lines[0]
    assert "pass --k8s-sec-registry-mirror HOST:PORT" in lines[0], lines[0]
    assert kind_clusters(real_cache) == before, "the failed run left a kind cluster"


def test_whole_suite_passes_on_kind_with_calico(kind_suite, kept_cluster, pytester):
    result = kind_suite("--k8s-sec-keep-cluster", f"--k8s-sec-report={pytester.path / 'report'}", "-rs")
    outcomes = result.parseoutcomes()
    report = json.loads((pytester.path / "report" / "k8s-sec-report.json").read_text())
    # the only skips allowed: control-plane ports no pod reaches (kubeadm binds the controller-manager
    # and scheduler to 127.0.0.1), NODE-1 not applicable; the kubelet checks run on every node
    unreachable = [c for c in report["cases"] if c["behaviour"] == "NODE-1" and c["verdict"] == "n/a"]
    assert all("is not reachable from pods on this cluster" in c["reason"] for c in unreachable), unreachable
    assert not [c for c in unreachable if "kubelet" in c["case"]], unreachable
    assert result.ret == 0 and outcomes.get("skipped", 0) == len(unreachable) and outcomes["passed"] >= 36, \
        result.stdout.str()[-3000:]
    cluster = report["cluster"]
    assert (cluster["provider"], cluster["netpol_enforcer"]) == ("kind", "calico"), cluster
    WHOLE_SUITE["report"] = report
    assert cluster["version"].startswith("v1."), cluster
    result.stdout.fnmatch_lines(["k8s-sec: cluster: kind*, Kubernetes v1.*, NetworkPolicy: calico",
                                 "k8s-sec: CERTIFIED*"])


def test_the_suite_as_a_job_inside_kind_is_certified_with_the_outside_runs_verdicts(kept_cluster, real_cache, tmp_path):
    """The runner's image loaded into the nodes, the Job with cluster-admin, the default profile with AUDIT-1 declared
    not applicable (the audit log is a file on the control-plane node, which no pod reads): every other behaviour has
    the verdict the whole suite's run from outside gave, on the same cluster."""
    kubeconfig, context = real_cache / "kind" / kept_cluster / "kubeconfig", f"kind-{kept_cluster}"
    api = api_client(str(kubeconfig), context)
    tar = image.build(Path(__file__).resolve().parents[2], tmp_path)
    subprocess.run([str(real_cache / "kind" / f"kind-{KIND_VERSION}"), "load", "image-archive", str(tar), "--name", kept_cluster],
                   check=True, capture_output=True)
    data = yaml.safe_load(default_profile_path().read_text())
    data.setdefault("not_applicable", {})["AUDIT-1"] = "the audit log is a file on the control-plane node, which no pod reads"
    names = Names("kind-job")
    job.apply(api, objects(names, pull_policy="Never", profile=yaml.safe_dump(data), allow_cluster_changes=True))
    inside = tmp_path / "inside"
    code = job.fetch(api, names, inside, timeout=900)
    verdicts = {b: v["status"] for b, v in json.loads((inside / "k8s-sec-report.json").read_text())
                ["certification"]["behaviours"].items()}
    outside = {b: v["status"] for b, v in WHOLE_SUITE["report"]["certification"]["behaviours"].items()}
    print(f"inside: {verdicts}\noutside: {outside}")
    assert code == 0, (inside / "pytest.log").read_text()[-3000:]
    assert verdicts == {**outside, "AUDIT-1": "not applicable"}
    left = client.CoreV1Api(api).list_namespace(label_selector=f"k8ssec.io/incluster={names.name}").items
    assert not [n for n in left if not n.metadata.deletion_timestamp], "fetch left the runner's namespace"


NETPOL = "--k8s-sec-behaviours=" + ",".join(f"NETPOL-{n}" for n in range(1, 9))
NOT_SYSTEM = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                    "values": ["kube-system", "local-path-storage"]}]}
DNS = {"pods": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}}
# A cluster-wide default deny under every namespace's policies, DNS left open: the hardened cluster of issue 23.
BASELINE = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
            "spec": {"subject": {"namespaces": NOT_SYSTEM},
                     "ingress": [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}],
                     "egress": [{"name": "dns", "action": "Allow", "to": [DNS],
                                 "ports": [{"portNumber": {"protocol": "UDP", "port": 53}},
                                           {"portNumber": {"protocol": "TCP", "port": 53}}]},
                                {"name": "deny-all", "action": "Deny", "to": [{"namespaces": {}}]}]}}
# The same in Calico's own terms, which the tables cannot read: after the namespaced policies (order 1000).
GLOBAL = {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy", "metadata": {"name": "k8ssec-test-default-deny"},
          "spec": {"tier": "default", "order": 2000, "selector": "all()",
                   "namespaceSelector": "kubernetes.io/metadata.name not in {'kube-system', 'local-path-storage'}",
                   "types": ["Ingress", "Egress"], "ingress": [{"action": "Deny"}],
                   "egress": [*({"action": "Allow", "protocol": proto, "destination": {
                       "namespaceSelector": "kubernetes.io/metadata.name == 'kube-system'", "selector": "k8s-app == 'kube-dns'",
                       "ports": [53]}} for proto in ("UDP", "TCP")), {"action": "Deny"}]}}


def _declared(effect: str) -> str:
    """The default profile, declaring what the cluster's unread network policies do."""
    data = yaml.safe_load(default_profile_path().read_text())
    data["networkpolicy"]["cluster_baseline"] = effect
    return yaml.safe_dump(data)


def _existing(kind_suite, real_cache, name: str):
    """The suite on the kept cluster as it is, allowed to make the admin-tier cases' cluster-scoped policies."""
    kubeconfig = real_cache / "kind" / name / "kubeconfig"

    def run(*args: str, profile: str | None = None):
        return kind_suite("--k8s-sec-cluster=existing", f"--kubeconfig={kubeconfig}", f"--context=kind-{name}",
                          "--k8s-sec-allow-cluster-changes", *args, without="--k8s-sec-", profile=profile)
    return api_client(str(kubeconfig), f"kind-{name}"), run


def test_a_cluster_wide_baseline_deny_is_modelled_and_every_netpol_case_passes(kind_suite, kept_cluster, real_cache):
    api, suite = _existing(kind_suite, real_cache, kept_cluster)
    objects = client.CustomObjectsApi(api)
    objects.create_cluster_custom_object("policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies", BASELINE)
    try:
        result = suite(NETPOL, "-v", "-rs")
    finally:
        objects.delete_cluster_custom_object("policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies", "default")
    assert result.ret == 0 and result.parseoutcomes().get("failed", 0) == 0, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(["*test_baseline_deny_is_opened_by_a_namespaced_allow PASSED*", "k8s-sec: CERTIFIED*"])


def test_a_calico_global_deny_is_not_observed_until_declared(kind_suite, kept_cluster, real_cache):
    api, suite = _existing(kind_suite, real_cache, kept_cluster)
    objects = client.CustomObjectsApi(api)
    objects.create_cluster_custom_object("crd.projectcalico.org", "v1", "globalnetworkpolicies", GLOBAL)
    try:
        undeclared = suite("--k8s-sec-behaviours=NETPOL-1,NETPOL-2", "-rs")
        declared = suite("--k8s-sec-behaviours=NETPOL-1,NETPOL-2,NETPOL-3", "-v",
                         profile=_declared("deny"))
    finally:
        objects.delete_cluster_custom_object("crd.projectcalico.org", "v1", "globalnetworkpolicies", GLOBAL["metadata"]["name"])
    undeclared.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: NETPOL-1, NETPOL-2*",
                                     "SKIPPED*not observed: cluster-scoped network policies the tables cannot read are in force "
                                     "(globalnetworkpolicies.crd.projectcalico.org/k8ssec-test-default-deny)*"])
    assert undeclared.ret != 0
    assert declared.ret == 0, declared.stdout.str()[-4000:]
    declared.stdout.fnmatch_lines(["k8s-sec: CERTIFIED*"])


def test_calico_not_enforcing_fails_the_deny_cases_with_their_tables(kind_suite, kept_cluster, real_cache):
    assert kept_cluster in kind_clusters(real_cache), "the previous test keeps the cluster this one breaks"
    kubeconfig = real_cache / "kind" / kept_cluster / "kubeconfig"
    api = api_client(str(kubeconfig), f"kind-{kept_cluster}")
    client.AppsV1Api(api).delete_namespaced_daemon_set("calico-node", "kube-system")
    core = client.CoreV1Api(api)
    wait_for("calico-node (felix) to stop on every node", lambda: core.list_namespaced_pod(
        "kube-system", label_selector="k8s-app=calico-node").items, timeout=120, ready=lambda pods: not pods)
    for node in node_containers(kept_cluster):
        subprocess.run(["docker", "exec", node, "sh", "-c", FLUSH_CALICO], check=True)
        # calico-node marks its node NetworkUnavailable as it stops (a felix that crashed would not),
        # and that taint would keep the lab's pods from being scheduled at all
        core.patch_node_status(node, {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False",
                                                                 "reason": "K8sSecNegativeControl",
                                                                 "message": "felix stopped on purpose"}]}})
    # the cluster as it now is, through its kubeconfig: the kind provider would wait for Calico
    result = kind_suite("--k8s-sec-cluster=existing", f"--kubeconfig={kubeconfig}", f"--context=kind-{kept_cluster}",
                        "--k8s-sec-behaviours=NETPOL-1,NETPOL-2,NETPOL-3", "-v", without="--k8s-sec-")
    result.stdout.fnmatch_lines(["*test_no_policy_every_client_reaches_nginx PASSED*",
                                 "*test_default_deny_blocks_every_client FAILED*",
                                 "*EXPECTED*", "*OBSERVED*", "*expected BLOCKED, observed ALLOWED*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed") == 3 and result.ret == 1, result.stdout.str()[-3000:]
