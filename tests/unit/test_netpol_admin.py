"""Cluster-scoped policies in the expected tables (netpol/admin.py): Admin tier before NetworkPolicy before Baseline.

Every expectation is written by hand from the API's documented semantics
(sigs.k8s.io/network-policy-api v0.1.5 apis/v1alpha1, v0.3.0 apis/v1alpha2 and site-src/api-overview.md).
"""

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.netpol import policies as pol
from pytest_k8ssec.netpol.expected import cluster_decisions, expected_table
from pytest_k8ssec.netpol.model import NAME_LABEL, Model, Pod, Port

from netpol_seed import A, HTTP, O, REAL, RUN, SEED, T, X

GROUP = "policy.networking.k8s.io"
TENANT = {"namespaces": {"matchLabels": {NAME_LABEL: T}}}
OTHER = {"namespaces": {"matchLabels": {NAME_LABEL: O}}}
EVERY_NAMESPACE = {"namespaces": {}}
NGINX = {"pods": {"namespaceSelector": {"matchLabels": {NAME_LABEL: T}}, "podSelector": {"matchLabels": {"run": "nginx"}}}}
# NetworkPolicies: one that lets every namespace in, one that lets only the tenant's client in.
ALLOW_ALL = pol.allow_from_pod_and_namespace_selector(T, {"run": "nginx"}, {"run": "access"}, {}, labels=RUN)
ALLOW_TENANT_CLIENT = pol.allow_from_pod_selector(T, {"run": "nginx"}, {"run": "access"}, labels=RUN)
DENY_ALL = pol.default_deny_ingress(T, labels=RUN)


def anp(name, priority, subject, *, ingress=(), egress=()):
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": name, "labels": RUN},
            "spec": {"priority": priority, "subject": subject, "ingress": list(ingress), "egress": list(egress)}}


def banp(subject, *, ingress=(), egress=(), name="default"):
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": name, "labels": RUN},
            "spec": {"subject": subject, "ingress": list(ingress), "egress": list(egress)}}


def cnp(name, tier, priority, subject, *, ingress=(), egress=()):
    return {"apiVersion": f"{GROUP}/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": name, "labels": RUN},
            "spec": {"tier": tier, "priority": priority, "subject": subject, "ingress": list(ingress),
                     "egress": list(egress)}}


def from_(action, *peers, **extra):
    return {"action": action, "from": list(peers), **extra}


def to(action, *peers, **extra):
    return {"action": action, "to": list(peers), **extra}


def seed_cells(tenant_client, other_client):
    """The seed's four probed cells: each client to nginx, by pod and by Service."""
    return {(source, destination, HTTP): outcome
            for source, outcome in (("tenant/access", tenant_client), ("other/access", other_client))
            for destination in ("tenant/nginx", "tenant/svc:nginx")}


def other_cells(*names):
    """The other client's two cells, decided by `names`."""
    return {("other/access", destination, HTTP): names for destination in ("tenant/nginx", "tenant/svc:nginx")}


# --- AdminNetworkPolicy ----------------------------------------------------------------------------

DENY_OTHER = anp("deny-other", 10, TENANT, ingress=[from_("Deny", OTHER)])


def test_admin_deny_cannot_be_opened_by_a_namespaced_allow():
    table = expected_table(SEED, [ALLOW_ALL], [DENY_OTHER])
    assert table.cells == seed_cells(A, X)
    assert cluster_decisions(SEED, [ALLOW_ALL], [DENY_OTHER]) == other_cells("AdminNetworkPolicy/deny-other")


PASS_OTHER = anp("pass-other", 5, TENANT, ingress=[from_("Pass", OTHER)])


@pytest.mark.parametrize("policies, baseline, other_client, deciders", [
    pytest.param([], [], A, {}, id="NETPOL-7 no NetworkPolicy, no baseline: the default allows"),
    pytest.param([DENY_ALL], [], X, {}, id="NETPOL-7 a NetworkPolicy default-deny decides"),
    pytest.param([ALLOW_ALL], [banp(TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])], A, {},
                 id="NETPOL-7 a NetworkPolicy allow decides over the baseline"),
    pytest.param([], [banp(TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])], X,
                 other_cells("BaselineAdminNetworkPolicy/default"), id="NETPOL-7 without NetworkPolicy the baseline"),
])
def test_admin_pass_skips_later_admin_rules_and_hands_on(policies, baseline, other_client, deciders):
    cluster = [PASS_OTHER, DENY_OTHER, *baseline]  # deny-other (priority 10) comes after the Pass (5)
    assert expected_table(SEED, policies, cluster).get("other/access", "tenant/nginx", HTTP) is other_client
    decided = cluster_decisions(SEED, policies, cluster)
    assert {k: v for k, v in decided.items() if k[0] == "other/access"} == deciders


@pytest.mark.parametrize("allow_priority, deny_priority, other_client", [
    pytest.param(10, 20, A, id="allow first: opens what the NetworkPolicy denies"),
    pytest.param(20, 10, X, id="deny first"),
])
def test_lower_priority_number_decides_first(allow_priority, deny_priority, other_client):
    cluster = [anp("allow-other", allow_priority, TENANT, ingress=[from_("Allow", OTHER)]),
               anp("deny-other", deny_priority, TENANT, ingress=[from_("Deny", OTHER)])]
    assert expected_table(SEED, [DENY_ALL], cluster).cells == seed_cells(X, other_client)


def test_within_a_policy_the_first_matching_rule_decides():
    cluster = [anp("ordered", 10, TENANT, ingress=[from_("Deny", OTHER), from_("Allow", EVERY_NAMESPACE)])]
    assert expected_table(SEED, [DENY_ALL], cluster).cells == seed_cells(A, X)


def test_admin_rules_only_apply_to_their_subject():
    cluster = [anp("deny-into-other", 10, OTHER, ingress=[from_("Deny", EVERY_NAMESPACE)])]
    assert expected_table(SEED, [], cluster).cells == seed_cells(A, A)  # other/access serves nothing


# --- egress ----------------------------------------------------------------------------------------

def test_admin_egress_deny_blocks_the_sender():
    cluster = [anp("no-nginx", 10, OTHER, egress=[to("Deny", NGINX)])]
    assert expected_table(SEED, [ALLOW_ALL], cluster).cells == seed_cells(A, X)
    assert cluster_decisions(SEED, [ALLOW_ALL], cluster) == other_cells("AdminNetworkPolicy/no-nginx")


def test_admin_egress_allow_does_not_open_the_destinations_ingress():
    cluster = [anp("to-nginx", 10, OTHER, egress=[to("Allow", NGINX)])]
    assert expected_table(SEED, [DENY_ALL], cluster).cells == seed_cells(X, X)
    assert cluster_decisions(SEED, [DENY_ALL], cluster) == {}  # the NetworkPolicy at nginx blocked


def test_allowed_cell_names_the_policies_of_both_directions():
    cluster = [anp("to-nginx", 10, OTHER, egress=[to("Allow", NGINX)]),
               anp("into-tenant", 20, TENANT, ingress=[from_("Allow", OTHER)])]
    assert cluster_decisions(SEED, [DENY_ALL], cluster) == other_cells("AdminNetworkPolicy/to-nginx",
                                                                       "AdminNetworkPolicy/into-tenant")


def test_baseline_egress_deny_is_opened_by_an_egress_network_policy():
    baseline = [banp(OTHER, egress=[to("Deny", EVERY_NAMESPACE)])]
    assert expected_table(SEED, [], baseline).cells == seed_cells(A, X)
    egress = pol.allow_egress_to(O, {"run": "access"}, to_namespaces={NAME_LABEL: T}, labels=RUN)
    assert expected_table(SEED, [egress], baseline).cells == seed_cells(A, A)


# --- BaselineAdminNetworkPolicy --------------------------------------------------------------------

BASELINE_DENY = banp(TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])


def test_baseline_deny_applies_where_no_network_policy_selects():
    assert expected_table(SEED, [], [BASELINE_DENY]).cells == seed_cells(X, X)


def test_namespaced_allow_opens_the_baseline_deny():
    # NETPOL-8: the NetworkPolicy selects nginx, so it decides: the tenant's client in, the other one not.
    assert expected_table(SEED, [ALLOW_TENANT_CLIENT], [BASELINE_DENY]).cells == seed_cells(A, X)
    assert cluster_decisions(SEED, [ALLOW_TENANT_CLIENT], [BASELINE_DENY]) == {}


def test_baseline_allow_before_deny_and_no_match_is_allowed():
    baseline = [banp(TENANT, ingress=[from_("Allow", TENANT), from_("Deny", EVERY_NAMESPACE)])]
    assert expected_table(SEED, [], baseline).cells == seed_cells(A, X)
    only_other = [banp(OTHER, ingress=[from_("Deny", EVERY_NAMESPACE)])]
    assert expected_table(SEED, [], only_other).cells == seed_cells(A, A)


# --- ports -----------------------------------------------------------------------------------------

METRICS = Port(9090, "metrics")
TWO_PORTS = Model(SEED.namespaces, (Pod("tenant", "nginx", {"run": "nginx"}, ports=(HTTP, METRICS)),
                                    Pod("other", "access", {"run": "access"})), real_names=REAL)


@pytest.mark.parametrize("ports, http, metrics", [
    pytest.param([{"namedPort": "http"}], X, A, id="namedPort http"),
    pytest.param([{"portNumber": {"protocol": "TCP", "port": 9090}}], A, X, id="portNumber 9090"),
    pytest.param([{"portNumber": {"protocol": "UDP", "port": 80}}], A, A, id="portNumber 80 UDP: not TCP 80"),
    pytest.param([{"portRange": {"start": 9000, "end": 9100}}], A, X, id="portRange 9000-9100, TCP by default"),
    pytest.param([{"namedPort": "nope"}, {"portNumber": {"protocol": "TCP", "port": 80}}], X, A, id="any entry"),
])
def test_admin_rule_ports(ports, http, metrics):
    table = expected_table(TWO_PORTS, [], [anp("ports", 10, TENANT, ingress=[from_("Deny", OTHER, ports=ports)])])
    assert table.get("other/access", "tenant/nginx", HTTP) is http
    assert table.get("other/access", "tenant/nginx", METRICS) is metrics


def test_named_port_resolves_on_the_destination():
    model = Model(SEED.namespaces, (Pod("tenant", "nginx", {"run": "nginx"}, ports=(HTTP,)),
                                    Pod("tenant", "alt", {"run": "alt"}, ports=(Port(8080, "http"), Port(80, "web"))),
                                    Pod("other", "access", {"run": "access"})), real_names=REAL)
    table = expected_table(model, [], [anp("named", 10, TENANT, ingress=[from_("Deny", OTHER,
                                                                               ports=[{"namedPort": "http"}])])])
    assert table.get("other/access", "tenant/nginx", HTTP) is X
    assert table.get("other/access", "tenant/alt", Port(8080, "http")) is X
    assert table.get("other/access", "tenant/alt", Port(80, "web")) is A  # 80 is not called http there


# --- ClusterNetworkPolicy (v1alpha2): the same semantics by tier -------------------------------------

@pytest.mark.parametrize("policies, cluster, tenant_client, other_client", [
    pytest.param([ALLOW_ALL], [cnp("deny-other", "Admin", 10, TENANT, ingress=[from_("Deny", OTHER)])], A, X,
                 id="NETPOL-6 Admin Deny not opened by a namespaced allow"),
    pytest.param([DENY_ALL], [cnp("accept-other", "Admin", 10, TENANT, ingress=[from_("Accept", OTHER)])], X, A,
                 id="Admin Accept opens a namespaced deny"),
    pytest.param([DENY_ALL], [cnp("pass-other", "Admin", 5, TENANT, ingress=[from_("Pass", OTHER)]),
                              cnp("accept-other", "Admin", 10, TENANT, ingress=[from_("Accept", OTHER)])], X, X,
                 id="NETPOL-7 Admin Pass hands on to the NetworkPolicy"),
    pytest.param([], [cnp("pass-other", "Admin", 5, TENANT, ingress=[from_("Pass", OTHER)]),
                      cnp("deny", "Baseline", 10, TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])], X, X,
                 id="Admin Pass, no NetworkPolicy: the Baseline decides"),
    pytest.param([ALLOW_TENANT_CLIENT], [cnp("deny", "Baseline", 10, TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])],
                 A, X, id="NETPOL-8 Baseline Deny opened by a namespaced allow"),
    pytest.param([], [cnp("pass", "Baseline", 5, TENANT, ingress=[from_("Pass", OTHER)]),
                      cnp("deny", "Baseline", 10, TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])], X, A,
                 id="Baseline Pass leaves the default: allowed"),
])
def test_cluster_network_policy_tiers(policies, cluster, tenant_client, other_client):
    assert expected_table(SEED, policies, cluster).cells == seed_cells(tenant_client, other_client)


@pytest.mark.parametrize("protocols, http, metrics", [
    pytest.param([{"destinationNamedPort": "metrics"}], A, X, id="destinationNamedPort"),
    pytest.param([{"tcp": {"destinationPort": {"number": 80}}}], X, A, id="tcp number"),
    pytest.param([{"tcp": {"destinationPort": {"range": {"start": 9000, "end": 9100}}}}], A, X, id="tcp range"),
    pytest.param([{"udp": {"destinationPort": {"number": 80}}}], A, A, id="udp is not tcp"),
])
def test_cluster_network_policy_protocols(protocols, http, metrics):
    cluster = [cnp("ports", "Admin", 10, TENANT, ingress=[from_("Deny", OTHER, protocols=protocols)])]
    table = expected_table(TWO_PORTS, [], cluster)
    assert table.get("other/access", "tenant/nginx", HTTP) is http
    assert table.get("other/access", "tenant/nginx", METRICS) is metrics


def test_cluster_network_policy_egress_and_pods_subject():
    cluster = [cnp("no-nginx", "Admin", 10, {"pods": {"namespaceSelector": {}, "podSelector": {
        "matchLabels": {"run": "access"}}}}, egress=[to("Deny", NGINX)])]
    assert expected_table(SEED, [], cluster).cells == seed_cells(X, X)
    assert cluster_decisions(SEED, [], cluster)[("tenant/access", "tenant/nginx", HTTP)] == (
        "ClusterNetworkPolicy/no-nginx",)


# --- what the model refuses ------------------------------------------------------------------------

@pytest.mark.parametrize("policy, field", [
    pytest.param(anp("cidr", 10, OTHER, egress=[to("Deny", {"networks": ["10.0.0.0/8"]})]), "networks", id="networks"),
    pytest.param(anp("nodes", 10, OTHER, egress=[to("Deny", {"nodes": {}})]), "nodes", id="nodes"),
    pytest.param(cnp("dns", "Admin", 10, OTHER, egress=[to("Accept", {"domainNames": ["example.com"]})]), "domainNames",
                 id="domainNames"),
    pytest.param(anp("same", 10, TENANT, ingress=[from_("Deny", {"namespaces": {"sameLabels": ["team"]}})]),
                 "sameLabels", id="sameLabels"),
    pytest.param(banp({"namespaces": {"notSameLabels": ["team"]}}), "notSameLabels", id="notSameLabels"),
])
def test_unmodelled_fields_are_refused_naming_policy_and_field(policy, field):
    name = policy["metadata"]["name"]
    with pytest.raises(NotImplementedError, match=rf"{policy['kind']}/{name}: .*{field}.* not modelled"):
        expected_table(SEED, [], [policy])


@pytest.mark.parametrize("cluster, message", [
    pytest.param([anp("a", 10, TENANT, ingress=[from_("Allow", OTHER)]),
                  anp("b", 10, TENANT, ingress=[from_("Deny", EVERY_NAMESPACE)])],
                 "AdminNetworkPolicy/a Allow, AdminNetworkPolicy/b Deny at the same priority 10", id="same priority"),
    pytest.param([DENY_OTHER, cnp("c", "Admin", 20, TENANT)], "Admin tier: AdminNetworkPolicy and ClusterNetworkPolicy",
                 id="two API generations in one tier"),
    pytest.param([banp(TENANT, name="strict")], "only admits the singleton named default", id="baseline not default"),
    pytest.param([cnp("c", "Developer", 10, TENANT)], "spec.tier must be Admin or Baseline", id="unknown tier"),
    pytest.param([banp(TENANT, ingress=[from_("Pass", OTHER)])], "action must be one of Allow, Deny", id="baseline Pass"),
])
def test_ambiguous_or_invalid_cluster_policies_are_errors(cluster, message):
    with pytest.raises(K8sSecError, match=message):
        expected_table(SEED, [], cluster)


def test_same_priority_policies_that_agree_are_both_named():
    cluster = [anp("a", 10, TENANT, ingress=[from_("Deny", OTHER)]), anp("b", 10, TENANT, ingress=[from_("Deny", OTHER)])]
    assert cluster_decisions(SEED, [], cluster) == other_cells("AdminNetworkPolicy/a", "AdminNetworkPolicy/b")
