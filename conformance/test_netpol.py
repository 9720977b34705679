"""NetworkPolicy (seed 000, section 3): the seeds' steps and a full matrix, against truth tables.

The lab's pods are created once for the module. Each case puts exactly its policies in force
and polls the whole matrix until it matches the table pinned by hand beside the case (bounded,
attempts counted in the report); on mismatch it prints expected, observed and diff tables.
Every pod serves 8080 and 8081, so each cell of a table reads `AA`, `AX`, ... for those two ports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from pytest_k8ssec import reachability, rights
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.fixtures import require_cluster_changes
from pytest_k8ssec.netpol import policies as np
from pytest_k8ssec.netpol.model import NAME_LABEL, Model, Namespace, Pod, Port, Service
from pytest_k8ssec.run import RUN_LABEL, run_prefix
from pytest_k8ssec.netpol.truthtable import Outcome, TruthTable, from_grid

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights
PORTS = (Port(8080, "http"), Port(8081, "alt"))
NGINX, ACCESS, WEB = {"run": "nginx"}, {"run": "access"}, {"run": "web"}
FRIENDLY = {"project": "friendly"}
# The seeds' nginx (2 replicas behind a Service) and access clients, plus bystanders in three namespaces.
LAB = Model(
    namespaces=(Namespace("tenant"), Namespace("other"), Namespace("third")),
    pods=tuple(Pod(ns, name, labels, ports=PORTS) for ns, name, labels in [
        ("tenant", "nginx-0", NGINX), ("tenant", "nginx-1", NGINX), ("tenant", "access", ACCESS), ("tenant", "web", WEB),
        ("other", "access", ACCESS), ("other", "web", WEB), ("other", "db", {"run": "db"}),
        ("third", "access", ACCESS), ("third", "web", WEB)]),
    services=(Service("tenant", "nginx", NGINX),),
)


Build = Callable[[Callable[[str], str], dict[str, str]], list[dict]]  # (real namespace name of a key, run labels) -> policies


@dataclass(frozen=True)
class Step:
    """One checked step: the policies it puts in force and the table pinned by hand for them.

    The tables are written from NetworkPolicy semantics, not printed by our evaluator, so an
    evaluator sharing an enforcer's misreading cannot pass a wrong cell; tests/unit checks the
    evaluator reproduces each. `labelled` is the namespace labels the table assumes.
    """

    name: str
    policies: Build
    table: TruthTable
    labelled: dict[str, dict[str, str]] = field(default_factory=dict)


class NetLab:
    """The lab on the cluster, and the checks the cases share."""

    def __init__(self, lab: reachability.Lab, labels: dict[str, str], cluster_baseline: str | None) -> None:
        self.lab, self.labels = lab, labels
        self.timeout = 30  # how long a policy change may take to show in the matrix
        self.unobserved = ""  # why no case can be judged here
        if lab.cluster.unread and cluster_baseline is None:
            self.unobserved = (f"not observed: cluster-scoped network policies the tables cannot read are in force "
                               f"({', '.join(lab.cluster.unread)}); declare what they do to pod traffic in the profile "
                               f"(networkpolicy.cluster_baseline: deny, deny-ingress or none)")
        elif lab.cluster.unread and cluster_baseline != "none":
            lab.assumed = (np.baseline_deny(egress=cluster_baseline == "deny"),)  # what no NetworkPolicy allows is denied

    def ns(self, key: str) -> str:
        return self.lab.model.real_name(key)

    def check(self, step: Step, evidence: dict, control_first: bool = True) -> reachability.Verdict:
        if self.unobserved:
            pytest.skip(self.unobserved)
        policies = step.policies(self.ns, self.labels)
        verdict = self.lab.check(policies, self.timeout, control_first, expected=step.table)
        cluster = self.lab.cluster.names
        evidence.update(mechanism=f"NetworkPolicy, {len(policies)} in force" + (f", under {len(cluster)} cluster-scoped" if cluster else ""),
                        cells=len(verdict.expected.cells),
                        attempts=verdict.attempts, matrix_seconds=round(verdict.seconds, 2),
                        probes=self.lab.prober.probes,
                        positive_control=len(verdict.control.expected.cells) if verdict.control else 0,
                        cluster_policies=", ".join(cluster) or "none",
                        cluster_decided=", ".join(f"{name}: {n} cells" for name, n in verdict.decided.items()) or "none",
                        policies=", ".join(_named(p) for p in policies) or "none",
                        table={"expected": verdict.expected.document(), "observed": verdict.observed.document()})
        if Outcome.BLOCKED in verdict.expected.cells.values() and Outcome.BLOCKED not in verdict.observed.cells.values():
            self.timeout = 5  # nothing blocked for a whole timeout: nothing enforces, and the cases after this fail fast
        self.lab.judge(verdict)
        return verdict


def _named(policy: dict) -> str:
    meta = policy["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else f"{policy['kind']}/{meta['name']}"


@pytest.fixture(scope="module")
def netlab(k8s_run, k8s_admin, k8s_cluster, k8s_rights, k8s_profile) -> NetLab:
    k8s_rights.require(rights.EXEC)  # the probes run inside the lab's pods
    namespaces = {ns.key: k8s_run.namespace(f"np-{ns.key}") for ns in LAB.namespaces}
    model = LAB.bind(namespaces)
    if len(k8s_cluster.node_names) > 1:
        model = reachability.pods_by_node(model, k8s_cluster.node_names)
    return NetLab(reachability.Lab(k8s_run, k8s_admin, model, k8s_cluster.images), k8s_run.labels, k8s_profile.cluster_baseline)


@pytest.fixture(scope="module")
def enforcing(netlab: NetLab, k8s_profile) -> NetLab:
    """The lab of the deny cases. Where the profile says NetworkPolicy is not enforced, they are
    not applicable unless a default-deny blocks something; elsewhere they run and say what they saw."""
    if not k8s_profile.netpol_enforced and not netlab.lab.blocks_anything(
            [np.default_deny_ingress(netlab.ns("tenant"), labels=netlab.labels)], timeout=20):
        not_applicable("the profile says this cluster does not enforce NetworkPolicy (networkpolicy.enforced: false)")
    return netlab


NETPOL_1 = Step("no policy", lambda ns, run: [], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       AA      AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | AA      -       AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       AA     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | AA      AA      AA      -      | AA      AA      AA     | AA      AA     | AA
    other/access    | AA      AA      AA      AA     | -       AA      AA     | AA      AA     | AA
    other/web       | AA      AA      AA      AA     | AA      -       AA     | AA      AA     | AA
    other/db        | AA      AA      AA      AA     | AA      AA      -      | AA      AA     | AA
    third/access    | AA      AA      AA      AA     | AA      AA      AA     | -       AA     | AA
    third/web       | AA      AA      AA      AA     | AA      AA      AA     | AA      -      | AA
    """, PORTS))


@behaviour("NETPOL-1")
def test_no_policy_every_client_reaches_nginx(netlab, k8s_evidence):
    """Every pod and the Service by IP, then nginx by its Service name as the seed's `wget nginx` does."""
    netlab.check(NETPOL_1, k8s_evidence)
    verdict = netlab.lab.check_service_names(netlab.timeout, expected=NETPOL_1.table)
    names = sorted({netlab.lab.prober.addresses[destination] for _, destination, _ in verdict.expected.keys()})
    k8s_evidence.update(service_names=", ".join(names), service_name_cells=len(verdict.expected.cells),
                        service_name_attempts=verdict.attempts,
                        service_name_table={"expected": verdict.expected.document(), "observed": verdict.observed.document()})
    netlab.lab.judge(verdict)


# Ingress to every tenant pod is closed, from tenant's own pods too; the Service is its pods.
NETPOL_2 = Step("default deny", lambda ns, run: [np.default_deny_ingress(ns("tenant"), labels=run)], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/access   | XX      XX      -       XX     | AA      AA      AA     | AA      AA     | XX
    tenant/web      | XX      XX      XX      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | XX      XX      XX      XX     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      XX      XX     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      XX      XX     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      XX      XX     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      XX      XX     | AA      AA      AA     | AA      -      | XX
    """, PORTS))


@behaviour("NETPOL-2")
def test_default_deny_blocks_every_client(enforcing, k8s_evidence):
    enforcing.check(NETPOL_2, k8s_evidence)


# A bare podSelector peer selects in the policy's own namespace: only tenant/access reaches nginx, on
# every port (the rule names none); with the default deny nothing else reaches any tenant pod.
NETPOL_3_WITH_DENY = Step("pod selector with default deny", lambda ns, run: [
    np.allow_from_pod_selector(ns("tenant"), NGINX, ACCESS, labels=run),
    np.default_deny_ingress(ns("tenant"), labels=run)], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       XX     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | XX      XX      XX      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | XX      XX      XX      XX     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      XX      XX     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      XX      XX     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      XX      XX     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      XX      XX     | AA      AA      AA     | AA      -      | XX
    """, PORTS))
# Without the default deny only nginx is isolated: tenant/access and tenant/web take anyone again.
NETPOL_3_DENY_DELETED = Step("pod selector, default deny deleted", lambda ns, run: [
    np.allow_from_pod_selector(ns("tenant"), NGINX, ACCESS, labels=run)], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       AA     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | XX      XX      AA      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | XX      XX      AA      AA     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      AA      AA     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      AA      AA     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      AA      AA     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      AA      AA     | AA      AA      AA     | AA      -      | XX
    """, PORTS))


@behaviour("NETPOL-3")
@pytest.mark.parametrize("step", [NETPOL_3_WITH_DENY, NETPOL_3_DENY_DELETED], ids=["with-default-deny", "default-deny-deleted"])
def test_pod_selector_admits_only_its_own_namespace(enforcing, step, k8s_evidence):
    enforcing.check(step, k8s_evidence)


def _friendly_policies(ns: Callable[[str], str], run: dict[str, str]) -> list[dict]:
    return [np.allow_from_pod_and_namespace_selector(ns("tenant"), NGINX, ACCESS, FRIENDLY, labels=run),
            np.default_deny_ingress(ns("tenant"), labels=run)]


# Two peers (OR): tenant's access pods, or every pod of a namespace labelled project=friendly. None is yet.
NETPOL_4_BEFORE = Step("namespace selector, before labelling", _friendly_policies, from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       XX     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | XX      XX      XX      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | XX      XX      XX      XX     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      XX      XX     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      XX      XX     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      XX      XX     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      XX      XX     | AA      AA      AA     | AA      -      | XX
    """, PORTS))
# other labelled: each of its pods (not only access) reaches nginx; tenant/access and web stay closed.
NETPOL_4_AFTER = Step("namespace selector, after labelling", _friendly_policies, from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       XX     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | XX      XX      XX      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | AA      AA      XX      XX     | -       AA      AA     | AA      AA     | AA
    other/web       | AA      AA      XX      XX     | AA      -       AA     | AA      AA     | AA
    other/db        | AA      AA      XX      XX     | AA      AA      -      | AA      AA     | AA
    third/access    | XX      XX      XX      XX     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      XX      XX     | AA      AA      AA     | AA      -      | XX
    """, PORTS), labelled={"other": FRIENDLY})


@behaviour("NETPOL-4")
@needs(rights.PATCH_NAMESPACES)  # the other namespace is labelled while the policy is live
def test_namespace_selector_admits_labelled_namespace(enforcing, k8s_evidence):
    """The live policy admits the other namespace's client once the label is added: blocked before, allowed after."""
    enforcing.check(NETPOL_4_BEFORE, k8s_evidence)
    enforcing.lab.label_namespace("other", FRIENDLY)
    enforcing.check(NETPOL_4_AFTER, k8s_evidence, control_first=False)


# third/access may send only to tenant/web (pod AND namespace selector in one peer), on 8080 only;
# nobody else is isolated for egress, and nobody for ingress.
NETPOL_5_EGRESS = Step("egress", lambda ns, run: [np.allow_egress_to(
    ns("third"), ACCESS, labels=run, to_pods=WEB, to_namespaces={"kubernetes.io/metadata.name": ns("tenant")},
    ports=[8080])], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       AA      AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | AA      -       AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       AA     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | AA      AA      AA      -      | AA      AA      AA     | AA      AA     | AA
    other/access    | AA      AA      AA      AA     | -       AA      AA     | AA      AA     | AA
    other/web       | AA      AA      AA      AA     | AA      -       AA     | AA      AA     | AA
    other/db        | AA      AA      AA      AA     | AA      AA      -      | AA      AA     | AA
    third/access    | XX      XX      XX      AX     | XX      XX      XX     | -       XX     | XX
    third/web       | AA      AA      AA      AA     | AA      AA      AA     | AA      -      | AA
    """, PORTS))


@behaviour("NETPOL-5")
def test_egress_policy_limits_what_clients_reach(enforcing, k8s_evidence):
    enforcing.check(NETPOL_5_EGRESS, k8s_evidence)


# other/web takes anyone, but only on the port its container names "http" (8080).
NETPOL_5_NAMED_PORT = Step("named port", lambda ns, run: [
    np.allow_named_port(ns("other"), WEB, "http", labels=run)], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       AA      AA      AA     | AA      AX      AA     | AA      AA     | -
    tenant/nginx-1  | AA      -       AA      AA     | AA      AX      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       AA     | AA      AX      AA     | AA      AA     | AA
    tenant/web      | AA      AA      AA      -      | AA      AX      AA     | AA      AA     | AA
    other/access    | AA      AA      AA      AA     | -       AX      AA     | AA      AA     | AA
    other/web       | AA      AA      AA      AA     | AA      -       AA     | AA      AA     | AA
    other/db        | AA      AA      AA      AA     | AA      AX      -      | AA      AA     | AA
    third/access    | AA      AA      AA      AA     | AA      AX      AA     | -       AA     | AA
    third/web       | AA      AA      AA      AA     | AA      AX      AA     | AA      -      | AA
    """, PORTS))


@behaviour("NETPOL-5")
def test_named_port_policy_admits_only_that_port(enforcing, k8s_evidence):
    enforcing.check(NETPOL_5_NAMED_PORT, k8s_evidence)


@behaviour("NETPOL-5")
@needs(rights.LIST_NODES)  # without it the run does not know the nodes, nor whether there are several
def test_matrix_across_nodes(enforcing, k8s_cluster, k8s_evidence):
    """NETPOL-3's policies and table, with the lab's pods spread over the nodes (tables name pods, not nodes)."""
    if len(k8s_cluster.node_names) < 2:
        not_applicable(f"the cluster has {len(k8s_cluster.node_names)} node: no cross-node traffic to check")
    enforcing.check(NETPOL_3_WITH_DENY, k8s_evidence)


# --- the admin and baseline tiers (AdminNetworkPolicy, BaselineAdminNetworkPolicy), around NetworkPolicy ---------------

@pytest.fixture(scope="module")
def tiers(enforcing: NetLab, k8s_cluster) -> NetLab:
    """The lab of the cluster-scoped cases: where the cluster serves the tiers and the run may create cluster policies."""
    if "adminnetworkpolicies" not in enforcing.lab.cluster.served:
        not_applicable("the cluster does not serve AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1)")
    require_cluster_changes(k8s_cluster, "an AdminNetworkPolicy")
    return enforcing


def _denied_from_other(ns: Callable[[str], str], run: dict[str, str]) -> list[dict]:
    return [np.admin_network_policy(f"{run_prefix(run[RUN_LABEL])}deny-other", 10, ns("tenant"), NGINX, [("Deny", [ns("other")])],
                                    labels=run),
            np.allow_all(ns("tenant"), labels=run)]


# The admin Deny keeps every pod of other from nginx, though tenant's own policy allows everything.
NETPOL_6 = Step("admin deny", _denied_from_other, from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       AA      AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | AA      -       AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       AA     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | AA      AA      AA      -      | AA      AA      AA     | AA      AA     | AA
    other/access    | XX      XX      AA      AA     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      AA      AA     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      AA      AA     | AA      AA      -      | AA      AA     | XX
    third/access    | AA      AA      AA      AA     | AA      AA      AA     | -       AA     | AA
    third/web       | AA      AA      AA      AA     | AA      AA      AA     | AA      -      | AA
    """, PORTS))


@behaviour("NETPOL-6")
def test_admin_deny_is_not_opened_by_a_namespaced_allow(tiers, k8s_evidence):
    tiers.check(NETPOL_6, k8s_evidence)


def _passed_from_other(ns: Callable[[str], str], run: dict[str, str]) -> list[dict]:
    prefix = run_prefix(run[RUN_LABEL])
    return [np.admin_network_policy(f"{prefix}pass-other", 10, ns("tenant"), NGINX, [("Pass", [ns("other")])], labels=run),
            np.admin_network_policy(f"{prefix}deny-after", 20, ns("tenant"), NGINX, [("Deny", [ns("other"), ns("third")])],
                                    labels=run),
            np.allow_from_peers(ns("tenant"), NGINX, [{"namespaceSelector": {"matchLabels": {NAME_LABEL: ns("other")}},
                                                       "podSelector": {"matchLabels": ACCESS}},
                                                      {"namespaceSelector": {"matchLabels": {NAME_LABEL: ns("third")}}}],
                                labels=run)]


# other's traffic to nginx is passed over the later Deny to tenant's policy, which lets other/access in and keeps
# other's web and db out; third's meets the Deny, though tenant's policy would let it in. Tenant's own pods are not
# among the policy's peers.
NETPOL_7 = Step("admin pass", _passed_from_other, from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       AA      AA     | AA      AA      AA     | AA      AA     | -
    tenant/access   | XX      XX      -       AA     | AA      AA      AA     | AA      AA     | XX
    tenant/web      | XX      XX      AA      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | AA      AA      AA      AA     | -       AA      AA     | AA      AA     | AA
    other/web       | XX      XX      AA      AA     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      AA      AA     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      AA      AA     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      AA      AA     | AA      AA      AA     | AA      -      | XX
    """, PORTS))


@behaviour("NETPOL-7")
def test_admin_pass_hands_the_decision_to_network_policy(tiers, k8s_evidence):
    tiers.check(NETPOL_7, k8s_evidence)


# The baseline denies every pod of tenant; nginx, which tenant's policy selects, takes tenant/access in, and the
# other tenant pods, which no NetworkPolicy selects, take nobody.
NETPOL_8 = Step("baseline deny", lambda ns, run: [
    np.baseline_deny([ns("tenant")], labels=run),
    np.allow_from_pod_selector(ns("tenant"), NGINX, ACCESS, labels=run)], from_grid("""
                    | tenant                         | other                  | third          | tenant
                    | nginx-0 nginx-1 access  web    | access  web     db     | access  web    | svc:nginx
    tenant/nginx-0  | -       XX      XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/nginx-1  | XX      -       XX      XX     | AA      AA      AA     | AA      AA     | -
    tenant/access   | AA      AA      -       XX     | AA      AA      AA     | AA      AA     | AA
    tenant/web      | XX      XX      XX      -      | AA      AA      AA     | AA      AA     | XX
    other/access    | XX      XX      XX      XX     | -       AA      AA     | AA      AA     | XX
    other/web       | XX      XX      XX      XX     | AA      -       AA     | AA      AA     | XX
    other/db        | XX      XX      XX      XX     | AA      AA      -      | AA      AA     | XX
    third/access    | XX      XX      XX      XX     | AA      AA      AA     | -       AA     | XX
    third/web       | XX      XX      XX      XX     | AA      AA      AA     | AA      -      | XX
    """, PORTS))


@behaviour("NETPOL-8")
def test_baseline_deny_is_opened_by_a_namespaced_allow(tiers, k8s_evidence):
    if "baselineadminnetworkpolicies" not in tiers.lab.cluster.served:
        not_applicable("the cluster does not serve BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1)")
    if not any(p["kind"] == "BaselineAdminNetworkPolicy" for p in tiers.lab.cluster.modelled):
        tiers.check(NETPOL_8, k8s_evidence)
        return
    # the baseline is a singleton: the cluster's own stands in for the case's, modelled, with the same namespaced allow
    verdict = tiers.check(replace(NETPOL_8, policies=lambda ns, run: NETPOL_8.policies(ns, run)[1:]), k8s_evidence)
    if not any(name.startswith("BaselineAdminNetworkPolicy/") for name in verdict.decided):
        pytest.skip("not observed: the cluster's own BaselineAdminNetworkPolicy decides no cell of the lab, and the case "
                    "cannot put another in force (it is a singleton)")
