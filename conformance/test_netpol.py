"""NetworkPolicy (seed 000, section 3): the seeds' steps and a full matrix, against truth tables.

The lab's pods are created once for the module. Each case puts exactly its policies in force,
derives the expected table from them, and polls the whole matrix until it matches (bounded,
attempts counted in the report); on mismatch it prints expected, observed and diff tables.
"""

from __future__ import annotations

import pytest

from pytest_k8ssec import reachability, rights
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.netpol import policies as np
from pytest_k8ssec.netpol.model import Model, Namespace, Pod, Port, Service
from pytest_k8ssec.netpol.truthtable import Outcome

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights
PORTS = (Port(8080, "http"), Port(8081, "alt"))
NGINX, ACCESS, WEB = {"run": "nginx"}, {"run": "access"}, {"run": "web"}
# The seeds' nginx (2 replicas behind a Service) and access clients, plus bystanders in three namespaces.
LAB = Model(
    namespaces=(Namespace("tenant"), Namespace("other"), Namespace("third")),
    pods=tuple(Pod(ns, name, labels, ports=PORTS) for ns, name, labels in [
        ("tenant", "nginx-0", NGINX), ("tenant", "nginx-1", NGINX), ("tenant", "access", ACCESS), ("tenant", "web", WEB),
        ("other", "access", ACCESS), ("other", "web", WEB), ("other", "db", {"run": "db"}),
        ("third", "access", ACCESS), ("third", "web", WEB)]),
    services=(Service("tenant", "nginx", NGINX),),
)


class NetLab:
    """The lab on the cluster, and the checks the cases share."""

    def __init__(self, lab: reachability.Lab, labels: dict[str, str]) -> None:
        self.lab, self.labels = lab, labels
        self.timeout = 30  # how long a policy change may take to show in the matrix

    def ns(self, key: str) -> str:
        return self.lab.model.real_name(key)

    def check(self, policies: list[dict], evidence: dict, control_first: bool = True) -> None:
        verdict = self.lab.check(policies, self.timeout, control_first)
        evidence.update(mechanism=f"NetworkPolicy, {len(policies)} in force", cells=len(verdict.expected.cells),
                        attempts=verdict.attempts, matrix_seconds=round(verdict.seconds, 2),
                        probes=self.lab.prober.probes,
                        positive_control=len(verdict.control.expected.cells) if verdict.control else 0,
                        cluster_policies=", ".join(self.lab.cluster_policies) or "none",
                        policies=", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in policies) or "none",
                        table={"expected": verdict.expected.document(), "observed": verdict.observed.document()})
        if Outcome.BLOCKED in verdict.expected.cells.values() and Outcome.BLOCKED not in verdict.observed.cells.values():
            self.timeout = 5  # nothing blocked for a whole timeout: nothing enforces, and the cases after this fail fast
        self.lab.judge(verdict)


@pytest.fixture(scope="module")
def netlab(k8s_run, k8s_admin, k8s_cluster, k8s_rights) -> NetLab:
    k8s_rights.require(rights.EXEC)  # the probes run inside the lab's pods
    namespaces = {ns.key: k8s_run.namespace(f"np-{ns.key}") for ns in LAB.namespaces}
    model = LAB.bind(namespaces)
    if len(k8s_cluster.node_names) > 1:
        model = reachability.pods_by_node(model, k8s_cluster.node_names)
    return NetLab(reachability.Lab(k8s_run, k8s_admin, model, k8s_cluster.images), k8s_run.labels)


@pytest.fixture(scope="module")
def enforcing(netlab: NetLab, k8s_profile) -> NetLab:
    """The lab of the deny cases. Where the profile says NetworkPolicy is not enforced, they are
    not applicable unless a default-deny blocks something; elsewhere they run and say what they saw."""
    if not k8s_profile.netpol_enforced and not netlab.lab.blocks_anything(
            [np.default_deny_ingress(netlab.ns("tenant"), labels=netlab.labels)], timeout=20):
        not_applicable("the profile says this cluster does not enforce NetworkPolicy (networkpolicy.enforced: false)")
    return netlab


@behaviour("NETPOL-1")
def test_no_policy_every_client_reaches_nginx(netlab, k8s_evidence):
    """Every pod and the Service by IP, then nginx by its Service name as the seed's `wget nginx` does."""
    netlab.check([], k8s_evidence)
    verdict = netlab.lab.check_service_names(netlab.timeout)
    names = sorted({netlab.lab.prober.addresses[destination] for _, destination, _ in verdict.expected.keys()})
    k8s_evidence.update(service_names=", ".join(names), service_name_cells=len(verdict.expected.cells),
                        service_name_attempts=verdict.attempts,
                        service_name_table={"expected": verdict.expected.document(), "observed": verdict.observed.document()})
    netlab.lab.judge(verdict)


@behaviour("NETPOL-2")
def test_default_deny_blocks_every_client(enforcing, k8s_evidence):
    enforcing.check([np.default_deny_ingress(enforcing.ns("tenant"), labels=enforcing.labels)], k8s_evidence)


@behaviour("NETPOL-3")
@pytest.mark.parametrize("with_default_deny", [True, False], ids=["with-default-deny", "default-deny-deleted"])
def test_pod_selector_admits_only_its_own_namespace(enforcing, with_default_deny, k8s_evidence):
    tenant = enforcing.ns("tenant")
    policies = [np.allow_from_pod_selector(tenant, NGINX, ACCESS, labels=enforcing.labels)]
    if with_default_deny:
        policies.append(np.default_deny_ingress(tenant, labels=enforcing.labels))
    enforcing.check(policies, k8s_evidence)


@behaviour("NETPOL-4")
@needs(rights.PATCH_NAMESPACES)  # the other namespace is labelled while the policy is live
def test_namespace_selector_admits_labelled_namespace(enforcing, k8s_evidence):
    """The live policy admits the other namespace's client once the label is added: blocked before, allowed after."""
    tenant = enforcing.ns("tenant")
    policies = [np.allow_from_pod_and_namespace_selector(tenant, NGINX, ACCESS, {"project": "friendly"}, labels=enforcing.labels),
                np.default_deny_ingress(tenant, labels=enforcing.labels)]
    enforcing.check(policies, k8s_evidence)
    enforcing.lab.label_namespace("other", {"project": "friendly"})
    enforcing.check(policies, k8s_evidence, control_first=False)


@behaviour("NETPOL-5")
def test_egress_policy_limits_what_clients_reach(enforcing, k8s_evidence):
    third = enforcing.ns("third")
    enforcing.check([np.allow_egress_to(third, ACCESS, labels=enforcing.labels, to_pods=WEB,
                                        to_namespaces={"kubernetes.io/metadata.name": enforcing.ns("tenant")},
                                        ports=[8080])], k8s_evidence)


@behaviour("NETPOL-5")
def test_named_port_policy_admits_only_that_port(enforcing, k8s_evidence):
    enforcing.check([np.allow_named_port(enforcing.ns("other"), WEB, "http", labels=enforcing.labels)], k8s_evidence)


@behaviour("NETPOL-5")
@needs(rights.LIST_NODES)  # without it the run does not know the nodes, nor whether there are several
def test_matrix_across_nodes(enforcing, k8s_cluster, k8s_evidence):
    if len(k8s_cluster.node_names) < 2:
        not_applicable(f"the cluster has {len(k8s_cluster.node_names)} node: no cross-node traffic to check")
    tenant = enforcing.ns("tenant")
    enforcing.check([np.allow_from_pod_selector(tenant, NGINX, ACCESS, labels=enforcing.labels),
                     np.default_deny_ingress(tenant, labels=enforcing.labels)], k8s_evidence)
