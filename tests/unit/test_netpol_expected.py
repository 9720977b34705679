"""Expected truth tables from policies (netpol/expected.py, with the builders of netpol/policies.py): the seed's steps, peers, egress, named ports."""

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.netpol import policies as pol
from pytest_k8ssec.netpol.expected import allowed, expected_table, selector_matches
from pytest_k8ssec.netpol.model import NAME_LABEL, Model, Pod, Port

from netpol_seed import A, HTTP, O, REAL, RUN, SEED, T, X, outcome

# --- the seed's steps (seed 000, section 3) ---------------------------------------------------------

SEED_STEPS = [
    pytest.param([], {}, A, A, id="NETPOL-1 no policy: both clients reach nginx"),
    pytest.param([pol.default_deny_ingress(T, labels=RUN)], {}, X, X, id="NETPOL-2 default-deny: both blocked"),
    pytest.param([pol.default_deny_ingress(T, labels=RUN),
                  pol.allow_from_pod_selector(T, {"run": "nginx"}, {"run": "access"}, labels=RUN)], {}, A, X,
                 id="NETPOL-3 allow run=access: only the tenant client"),
    pytest.param([pol.allow_from_pod_selector(T, {"run": "nginx"}, {"run": "access"}, labels=RUN)], {}, A, X,
                 id="NETPOL-3 default-deny deleted: other namespace still blocked"),
    pytest.param([pol.allow_from_pod_and_namespace_selector(T, {"run": "nginx"}, {"run": "access"},
                                                            {"project": "friendly"}, labels=RUN)], {}, A, X,
                 id="NETPOL-4 friendly peer, namespace not yet labelled"),
    pytest.param([pol.allow_from_pod_and_namespace_selector(T, {"run": "nginx"}, {"run": "access"},
                                                            {"project": "friendly"}, labels=RUN)],
                 {"project": "friendly"}, A, A, id="NETPOL-4 namespace labelled project=friendly: both reach"),
]


@pytest.mark.parametrize("policies, other_labels, tenant_client, other_client", SEED_STEPS)
def test_seed_steps_give_the_seed_outcomes(policies, other_labels, tenant_client, other_client):
    model = SEED.relabel("other", other_labels)
    for destination in ("tenant/nginx", "tenant/svc:nginx"):
        assert outcome(model, policies, "tenant/access", destination) is tenant_client
        assert outcome(model, policies, "other/access", destination) is other_client


def test_step_ten_policy_has_two_peers_like_the_seed():
    manifest = pol.allow_from_pod_and_namespace_selector(T, {"run": "nginx"}, {"run": "access"},
                                                         {"project": "friendly"}, labels=RUN)
    assert manifest["metadata"] == {"name": "access-nginx", "namespace": T, "labels": RUN}
    assert manifest["spec"] == {
        "podSelector": {"matchLabels": {"run": "nginx"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"run": "access"}}},
                              {"namespaceSelector": {"matchLabels": {"project": "friendly"}}}]}]}


def test_default_deny_isolates_only_its_own_namespace():
    table = expected_table(SEED, [pol.default_deny_ingress(T, labels=RUN)])
    assert table.get("tenant/access", "tenant/nginx", HTTP) is X
    assert "tenant/access" not in table.destinations  # clients serve nothing, so they are no column


def test_a_pod_always_reaches_itself_and_is_not_probed():
    nginx = SEED.pods[0]
    assert allowed(SEED, [pol.default_deny_ingress(T, labels=RUN)], nginx, nginx, HTTP)
    assert expected_table(SEED, []).get("tenant/nginx", "tenant/nginx", HTTP) is None
    assert expected_table(SEED, []).get("tenant/nginx", "tenant/svc:nginx", HTTP) is None


# --- peers, selectors, policy types ----------------------------------------------------------------

def test_namespace_and_pod_selector_in_one_peer_need_both():
    policy = pol.allow_from_pod_selector(T, {"run": "nginx"}, {}, labels=RUN)
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {"matchLabels": {"project": "friendly"}},
                                             "podSelector": {"matchLabels": {"run": "access"}}}]
    model = Model(SEED.namespaces, (*SEED.pods, Pod("other", "intruder", {"run": "intruder"})), SEED.services,
                  REAL).relabel("other", {"project": "friendly"})
    table = expected_table(model, [policy])
    assert table.get("other/access", "tenant/nginx", HTTP) is A
    assert table.get("other/intruder", "tenant/nginx", HTTP) is X
    assert table.get("tenant/access", "tenant/nginx", HTTP) is X  # tenant is not labelled friendly


def test_namespace_selector_sees_the_api_servers_name_label():
    assert SEED.namespace_labels("other") == {NAME_LABEL: O}
    policy = pol.allow_from_pod_and_namespace_selector(T, {"run": "nginx"}, {"run": "none"}, {NAME_LABEL: O},
                                                       labels=RUN)
    assert outcome(SEED, [policy], "other/access", "tenant/nginx") is A


@pytest.mark.parametrize("expression, matches", [
    ({"key": "tier", "operator": "In", "values": ["web", "api"]}, True),
    ({"key": "tier", "operator": "In", "values": ["db"]}, False),
    ({"key": "tier", "operator": "NotIn", "values": ["db"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),
    ({"key": "tier", "operator": "Exists"}, True),
    ({"key": "zone", "operator": "Exists"}, False),
    ({"key": "zone", "operator": "DoesNotExist"}, True),
    ({"key": "tier", "operator": "DoesNotExist"}, False),
], ids=lambda v: str(v) if isinstance(v, bool) else f"{v['key']} {v['operator']} {v.get('values', '')}")
def test_match_expressions(expression, matches):
    assert selector_matches({"matchExpressions": [expression]}, {"tier": "web"}) is matches


def test_match_labels_and_expressions_are_anded_and_empty_matches_all():
    selector = {"matchLabels": {"tier": "web"}, "matchExpressions": [{"key": "zone", "operator": "Exists"}]}
    assert not selector_matches(selector, {"tier": "web"})
    assert selector_matches(selector, {"tier": "web", "zone": "a"})
    assert selector_matches({}, {}) and selector_matches(None, {"x": "y"})
    with pytest.raises(ValueError, match="operator 'Gt'"):
        selector_matches({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {})


def test_policy_with_match_expressions_selects_peers():
    policy = pol.allow_from_pod_selector(T, {"run": "nginx"}, {}, labels=RUN)
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}, "podSelector": {
        "matchExpressions": [{"key": "run", "operator": "In", "values": ["access", "admin"]}]}}]
    table = expected_table(SEED, [policy])
    assert table.get("tenant/access", "tenant/nginx", HTTP) is A
    assert table.get("other/access", "tenant/nginx", HTTP) is A  # empty namespaceSelector: every namespace


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    policy = pol.allow_egress_to(O, {"run": "access"}, to_pods={"run": "nobody"}, labels=RUN)
    del policy["spec"]["policyTypes"]
    table = expected_table(SEED, [policy])
    assert table.get("other/access", "tenant/nginx", HTTP) is X  # egress isolated by the default
    explicit = pol.allow_egress_to(T, {"run": "nginx"}, to_pods={"run": "nobody"}, labels=RUN)
    assert outcome(SEED, [explicit], "tenant/access", "tenant/nginx") is A  # policyTypes [Egress]: ingress open


def test_ip_block_peers_are_refused_clearly():
    policy = pol.allow_from_pod_selector(T, {"run": "nginx"}, {}, labels=RUN)
    policy["spec"]["ingress"][0]["from"] = [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    with pytest.raises(NotImplementedError, match="ipBlock peers are not modelled"):
        expected_table(SEED, [policy])


def test_policy_in_a_namespace_outside_the_model_is_an_error():
    with pytest.raises(K8sSecError, match="'default' is not one of this model's"):
        expected_table(SEED, [pol.default_deny_ingress("default", labels=RUN)])


def test_unbound_model_says_how_to_bind():
    with pytest.raises(K8sSecError, match="bind the model"):
        Model(SEED.namespaces, SEED.pods).real_name("tenant")


def test_service_backends_that_disagree_are_an_error():
    model = Model(SEED.namespaces, (*SEED.pods, Pod("tenant", "nginx-b", {"run": "nginx", "v": "b"}, ports=(HTTP,))),
                  SEED.services, REAL)
    with pytest.raises(K8sSecError, match="backends disagree"):
        expected_table(model, [pol.allow_from_pod_selector(T, {"v": "b"}, {"run": "nobody"}, labels=RUN)])


# --- egress ----------------------------------------------------------------------------------------

def test_egress_deny_blocks_the_sender_only():
    table = expected_table(SEED, [pol.deny_all_egress(O, labels=RUN)])
    assert table.get("other/access", "tenant/nginx", HTTP) is X
    assert table.get("tenant/access", "tenant/nginx", HTTP) is A


def test_egress_allow_reopens_one_destination_and_port():
    to_nginx = pol.allow_egress_to(O, {"run": "access"}, to_pods={"run": "nginx"}, to_namespaces={NAME_LABEL: T},
                                   ports=[80], labels=RUN)
    assert to_nginx["spec"]["egress"] == [{"to": [{"podSelector": {"matchLabels": {"run": "nginx"}},
                                                   "namespaceSelector": {"matchLabels": {NAME_LABEL: T}}}],
                                           "ports": [{"protocol": "TCP", "port": 80}]}]
    policies = [pol.deny_all_egress(O, labels=RUN), to_nginx]
    assert outcome(SEED, policies, "other/access", "tenant/nginx") is A
    wrong_port = Model(SEED.namespaces, (Pod("tenant", "nginx", {"run": "nginx"}, ports=(Port(8080),)), SEED.pods[2]),
                       real_names=REAL)
    assert outcome(wrong_port, policies, "other/access", "tenant/nginx", Port(8080)) is X


def test_traffic_needs_both_egress_at_source_and_ingress_at_destination():
    policies = [pol.allow_egress_to(O, {}, to_namespaces={}, labels=RUN), pol.default_deny_ingress(T, labels=RUN)]
    assert outcome(SEED, policies, "other/access", "tenant/nginx") is X


def test_egress_to_pods_alone_selects_in_the_policy_namespace():
    policy = pol.allow_egress_to(O, {"run": "access"}, to_pods={"run": "nginx"}, labels=RUN)
    assert outcome(SEED, [policy], "other/access", "tenant/nginx") is X


# --- named ports -----------------------------------------------------------------------------------

def test_named_port_allows_only_that_port_resolved_per_destination():
    metrics = Port(9090, "metrics")
    model = Model(SEED.namespaces, (
        Pod("tenant", "nginx", {"run": "nginx"}, ports=(HTTP, metrics)),
        Pod("tenant", "alt", {"run": "nginx"}, ports=(Port(8080, "http"), Port(80, "web"))),
        Pod("other", "access", {"run": "access"})), real_names=REAL)
    table = expected_table(model, [pol.allow_named_port(T, {"run": "nginx"}, "http", labels=RUN)])
    assert table.get("other/access", "tenant/nginx", HTTP) is A
    assert table.get("other/access", "tenant/nginx", metrics) is X
    assert table.get("other/access", "tenant/alt", Port(8080, "http")) is A
    assert table.get("other/access", "tenant/alt", Port(80, "web")) is X  # port 80 is not called http there


def test_numeric_port_range_with_end_port():
    policy = pol.allow_named_port(T, {"run": "nginx"}, "unused", labels=RUN)
    policy["spec"]["ingress"][0]["ports"] = [{"port": 70, "endPort": 90}]
    assert outcome(SEED, [policy], "other/access", "tenant/nginx") is A
    policy["spec"]["ingress"][0]["ports"] = [{"port": 81, "endPort": 90}]
    assert outcome(SEED, [policy], "other/access", "tenant/nginx") is X
