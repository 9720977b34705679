"""Cluster-scoped network policies on the local cluster, whose enforcer (kube-router) reads none of them.

The CRDs come from Calico's source beside the project (../shared/calico): served by the API
server, ignored by the enforcer. So the admin-tier cases (NETPOL-6..8) must FAIL naming the
cells, a Calico GlobalNetworkPolicy nobody declared must leave NETPOL not observed, and a
declared default deny that nothing applies must fail.
"""

from __future__ import annotations

import contextlib
import tarfile
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8ssec.kube import dynamic_client
from pytest_k8ssec.waits import wait_for

from controls import certified, failed, profile_with

CALICO = Path(__file__).resolve().parents[3] / "shared" / "calico" / "calico-v3.31.3.tar.gz"
CRD_DIR = "calico-v3.31.3/libcalico-go/config/crd/"
ANP, BANP = "policy.networking.k8s.io_adminnetworkpolicies.yaml", "policy.networking.k8s.io_baselineadminnetworkpolicies.yaml"
GNP = "crd.projectcalico.org_globalnetworkpolicies.yaml"
TIER_CASES = {"test_admin_deny_is_not_opened_by_a_namespaced_allow", "test_admin_pass_hands_the_decision_to_network_policy",
              "test_baseline_deny_is_opened_by_a_namespaced_allow"}


def crds(*files: str) -> list[dict]:
    with tarfile.open(CALICO) as tar:
        return [yaml.safe_load(tar.extractfile(CRD_DIR + f)) for f in files]


@contextlib.contextmanager
def served(admin: client.ApiClient, manifests: list[dict]):
    """The CRDs served for the block's length, then removed (this is the project's own cluster)."""
    ext = client.ApiextensionsV1Api(admin)
    names = [m["metadata"]["name"] for m in manifests]

    def established() -> bool:
        return all(any(c.type == "Established" and c.status == "True" for c in ext.read_custom_resource_definition(n).status.conditions or [])
                   for n in names)
    def discovered() -> bool:  # the suite finds kinds through discovery, which lists a new CRD a little after
        resources = dynamic_client(admin).resources
        return all(resources.search(group=m["spec"]["group"], name=m["spec"]["names"]["plural"]) for m in manifests)
    for m in manifests:
        ext.create_custom_resource_definition(m)
    try:
        wait_for(f"the CRDs {', '.join(names)} to be established", established, timeout=60, interval=0.5, ready=bool)
        wait_for(f"discovery to list {', '.join(names)}", discovered, timeout=60, interval=0.5, ready=bool)
        yield
    finally:
        for n in names:
            with contextlib.suppress(ApiException):
                ext.delete_custom_resource_definition(n)

        def gone() -> bool:
            return not [n for n in names if n in {c.metadata.name for c in ext.list_custom_resource_definition().items}]
        wait_for("the CRDs to be removed", gone, timeout=60, interval=0.5, ready=bool)


def test_admin_tiers_an_enforcer_ignores_fail_naming_the_cells(suite, admin):
    with served(admin, crds(ANP, BANP)):
        result = suite("--k8s-sec-behaviours=NETPOL-6,NETPOL-7,NETPOL-8", "-v")
    assert failed(result) == TIER_CASES, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*reachability differs from the policies in force*",
                                 "*cells of the expected table that cluster-scoped policies decided: "
                                 "AdminNetworkPolicy/k8ssec-*-deny-other 18*",
                                 "*other/access -> tenant/nginx-0 port 8080/TCP (http): expected BLOCKED, observed ALLOWED*"])
    assert result.ret == 1 and not certified(result)


def test_a_vendor_policy_is_not_observed_until_its_effect_is_declared(suite, admin, run):
    name = run.name("default-deny")
    policy = {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
              "spec": {"order": 2000, "selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}}
    objects = client.CustomObjectsApi(admin)
    with served(admin, crds(GNP)):
        objects.create_cluster_custom_object("crd.projectcalico.org", "v1", "globalnetworkpolicies", policy)
        try:
            undeclared = suite("--k8s-sec-behaviours=NETPOL-1", "-v", "-rs")
            declared_none = suite("--k8s-sec-behaviours=NETPOL-1", "-v",
                                  profile=profile_with(lambda d: d["networkpolicy"].update(cluster_baseline="none")))
            declared_deny = suite("--k8s-sec-behaviours=NETPOL-1", "-v",
                                  profile=profile_with(lambda d: d["networkpolicy"].update(cluster_baseline="deny")))
        finally:
            objects.delete_cluster_custom_object("crd.projectcalico.org", "v1", "globalnetworkpolicies", name)
    undeclared.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: NETPOL-1*",
                                     f"SKIPPED*not observed: cluster-scoped network policies the tables cannot read are in "
                                     f"force (globalnetworkpolicies.crd.projectcalico.org/{name})*networkpolicy.cluster_baseline*"])
    assert undeclared.ret != 0
    assert declared_none.ret == 0 and certified(declared_none), declared_none.stdout.str()[-3000:]
    # declared a default deny, which kube-router does not apply: every cell expected blocked is reached
    assert failed(declared_deny) == {"test_no_policy_every_client_reaches_nginx"}, declared_deny.stdout.str()[-3000:]
    declared_deny.stdout.fnmatch_lines(["*the profile declares them a default deny (networkpolicy.cluster_baseline: deny)*",
                                        "*expected BLOCKED, observed ALLOWED*"])
