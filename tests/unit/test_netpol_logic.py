"""NetworkPolicy reachability without a cluster: expected tables, printing, probe scripts and their output.

The probe script is also run for real, with /bin/sh and busybox wget, against loopback ports only.
"""

import http.server
import os
import socket
import subprocess
import threading

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.netpol import policies as pol
from pytest_k8ssec.netpol.expected import allowed, expected_table, selector_matches
from pytest_k8ssec.netpol.model import NAME_LABEL, Model, Namespace, Pod, Port, Service
from pytest_k8ssec.netpol.probe import (Observation, ProbeTarget, Tools, parse_probe_output, probe_script,
                                        reproduce_commands)
from pytest_k8ssec.netpol.truthtable import Outcome, TruthTable, diff, wrong_cells

A, X, E = Outcome.ALLOWED, Outcome.BLOCKED, Outcome.ERROR
RUN = {"k8ssec.io/run": "r1"}
HTTP = Port(80, "http")
REAL = {"tenant": "k8ssec-r1-tenant", "other": "k8ssec-r1-other"}
T, O = REAL["tenant"], REAL["other"]

SEED = Model(
    namespaces=(Namespace("tenant"), Namespace("other")),
    pods=(Pod("tenant", "nginx", {"run": "nginx"}, ports=(HTTP,)),
          Pod("tenant", "access", {"run": "access"}),
          Pod("other", "access", {"run": "access"})),
    services=(Service("tenant", "nginx", {"run": "nginx"}),),
).bind(REAL)


def outcome(model, policies, source, destination, port=HTTP):
    return expected_table(model, policies).get(source, destination, port)


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


# --- printing and diff -----------------------------------------------------------------------------

P80 = Port(80, "http")


def tiny(cells):
    table = TruthTable(["t/a", "o/a"], ["t/web", "o/web"], [P80])
    for (s, d), value in cells.items():
        table.set(s, d, P80, value)
    return table


EXPECTED = tiny({("t/a", "t/web"): A, ("t/a", "o/web"): X, ("o/a", "t/web"): X, ("o/a", "o/web"): A})


def test_table_renders_one_block_per_port_with_short_names():
    assert EXPECTED.render() == (
        "port 80/TCP (http): '.' allowed, 'X' blocked, '?' error, ' ' not probed\n"
        "     t/web  o/web\n"
        "t/a  .      X\n"
        "o/a  X      .")


def test_unprobed_cells_render_blank():
    table = tiny({("t/a", "o/web"): E, ("o/a", "t/web"): A})
    assert table.render().splitlines()[1:] == ["     t/web  o/web", "t/a         ?", "o/a  ."]


def test_diff_shows_observed_symbol_where_wrong_and_dash_where_right():
    observed = tiny({("t/a", "t/web"): A, ("t/a", "o/web"): A, ("o/a", "t/web"): E})  # o/a -> o/web missing
    assert diff(EXPECTED, observed) == (
        "expected vs observed: 3 of 4 cells wrong\n"
        "\n"
        "port 80/TCP (http): '-' as expected, else the OBSERVED outcome: '.' allowed, 'X' blocked, '?' error\n"
        "     t/web  o/web\n"
        "t/a  -      .\n"
        "o/a  ?      ?")
    assert [str(m) for m in wrong_cells(EXPECTED, observed)] == [
        "t/a -> o/web port 80/TCP (http): expected BLOCKED, observed ALLOWED",
        "o/a -> t/web port 80/TCP (http): expected BLOCKED, observed ERROR",
        "o/a -> o/web port 80/TCP (http): expected ALLOWED, observed ERROR"]


def test_matching_tables_have_no_wrong_cells():
    assert wrong_cells(EXPECTED, EXPECTED) == []
    assert diff(EXPECTED, EXPECTED).splitlines()[0] == "expected vs observed: 0 of 4 cells wrong"


def test_cells_outside_the_axes_are_refused():
    with pytest.raises(KeyError, match="outside this table's axes"):
        EXPECTED.empty_like().set("t/a", "nowhere", P80, A)


def test_reproduce_command_per_wrong_cell():
    observed = expected_table(SEED, [])
    wrong = wrong_cells(expected_table(SEED, [pol.default_deny_ingress(T, labels=RUN)]), observed)
    commands = reproduce_commands(wrong, SEED, {"tenant/nginx": "10.244.1.7", "tenant/svc:nginx": "10.96.0.20"})
    assert commands[0] == (
        "kubectl exec -n k8ssec-r1-tenant access -- sh -c 'timeout 3 wget -q -O - http://10.244.1.7:80'"
        "  # tenant/access -> tenant/nginx port 80/TCP (http): expected BLOCKED, observed ALLOWED")
    assert len(commands) == 4 and "-T" not in " ".join(commands)


# --- probe output ----------------------------------------------------------------------------------

WEB = ProbeTarget("tenant/nginx", HTTP, "10.244.1.7")


@pytest.mark.parametrize("line, expected", [
    ("tenant/nginx:80 0", A),
    ("tenant/nginx:80 143", X),
    ("tenant/nginx:80 124", X),
    ("tenant/nginx:80 1 wget: can't connect to remote host (10.244.1.7): Connection refused", X),
    ("tenant/nginx:80 1 wget: can't connect to remote host (10.244.1.7): Host is unreachable", X),
    ("tenant/nginx:80 1 wget: server returned error: HTTP/1.1 404 Not Found", E),
    ("tenant/nginx:80 1 wget: bad address 'nginx'", E),
    ("tenant/nginx:80 139", E),
    ("tenant/nginx:80 127 sh: timeout: not found", E),
    ("tenant/nginx:80 2", E),
    ("tenant/nginx:80 banana", E),
    ("tenant/nginx:80", E),
    ("", E),
    ("other/x:80 0", E),
    ("tenant/nginx:80 0\ntenant/nginx:80 143", E),
], ids=["allowed", "timeout busybox 143", "timeout coreutils 124", "refused", "no route musl", "HTTP 404",
        "DNS failure", "segfault 139", "timeout missing", "other status", "garbage", "no status",
        "crashed exec, no output", "missing line", "duplicate lines"])
def test_probe_output_parser(line, expected):
    assert parse_probe_output(line, [WEB])[WEB].outcome is expected


def test_parser_ignores_shell_noise_and_keeps_the_reason():
    observed = parse_probe_output("Terminated\ntenant/nginx:80 139\n", [WEB])[WEB]
    assert observed == Observation(E, "wget crashed (segmentation fault) (exit 139)")


@pytest.mark.parametrize("target, error, match", [
    (ProbeTarget("tenant/nginx", Port(53, protocol="UDP"), "10.0.0.1"), NotImplementedError, "TCP only"),
    (ProbeTarget("tenant/a b", HTTP, "10.0.0.1"), ValueError, "echoed back as one word"),
], ids=["udp", "space in id"])
def test_probe_script_refuses_what_it_cannot_probe(target, error, match):
    with pytest.raises(error, match=match):
        probe_script([target])


def test_probe_script_refuses_duplicate_targets():
    with pytest.raises(ValueError, match="unique"):
        probe_script([WEB, WEB])


# --- the script, for real, with busybox on loopback ------------------------------------------------

BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK), reason="needs /bin/busybox (busybox-static)")


def _server(status: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def loopback():
    """Ports on 127.0.0.1: answering 200, answering 404, accepting but never answering, closed."""
    servers = [_server(200), _server(404)]
    silent = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield {"ok": servers[0].server_port, "missing": servers[1].server_port,
           "silent": silent.getsockname()[1], "closed": closed_port}
    for s in servers:
        s.shutdown()
        s.server_close()
    silent.close()


def run_script(shell, targets, tools, timeout_s=1):
    done = subprocess.run([*shell, "-c", probe_script(targets, timeout_s, tools)], capture_output=True, text=True,
                          timeout=timeout_s + 10)
    return parse_probe_output(done.stdout, targets)


@needs_busybox
@pytest.mark.parametrize("shell", [["/bin/sh"], [BUSYBOX, "sh"]], ids=["sh", "busybox sh"])
def test_probe_script_with_real_busybox_wget(loopback, shell):
    targets = {name: ProbeTarget(f"lo/{name}", Port(port), "127.0.0.1") for name, port in loopback.items()}
    tools = Tools(wget=(BUSYBOX, "wget"), timeout=(BUSYBOX, "timeout"))
    observed = run_script(shell, list(targets.values()), tools)
    assert {name: observed[t].outcome for name, t in targets.items()} == {
        "ok": A, "silent": X, "closed": X, "missing": E}
    assert observed[targets["silent"]].detail == "no answer: killed by timeout (SIGTERM)"
    assert "Connection refused" in observed[targets["closed"]].detail
    assert "404" in observed[targets["missing"]].detail


@needs_busybox
def test_crashing_wget_is_an_error_not_blocked(loopback):
    target = ProbeTarget("lo/ok", Port(loopback["ok"]), "127.0.0.1")
    crashing = Tools(wget=(BUSYBOX, "wget", "-T", "1"), timeout=(BUSYBOX, "timeout"))  # busybox 1.35's -T segfaults
    assert run_script(["/bin/sh"], [target], crashing)[target] == Observation(
        E, "wget crashed (segmentation fault) (exit 139)")
