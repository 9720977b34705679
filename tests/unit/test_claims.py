"""The claims file: its schema's one-line errors, the claims it builds, and how a probe's output is read."""

from __future__ import annotations

import pytest
import yaml

from pytest_k8ssec.claimprobe import Cell, Target, classify, command, judge, script
from pytest_k8ssec.claims import Reach, Source, load_claims
from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.netpol.truthtable import Outcome
from pytest_k8ssec.plugin import suite_dir

SHOP = suite_dir().parent / "examples" / "shop"


def write(tmp_path, data) -> object:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_the_shops_claims_file_is_valid_and_every_kind_is_built():
    claims = load_claims(SHOP / "claims.yaml")
    assert [c.kind for c in claims.claims] == ["reach"] * 6 + ["can-i"] * 2 + ["admission"] * 2
    sa = claims.claims[6].check.subject
    assert sa.user == "system:serviceaccount:shop-web:ci" and "system:serviceaccounts:shop-web" in sa.groups
    assert claims.claims[9].check.pod["spec"]["containers"][0]["name"] == "server", "the pod file beside the claims"
    assert claims.claims[7].check.allowed and not claims.claims[6].check.allowed, "YAML's yes/no read as booleans"
    assert set(load_claims(SHOP / "declared.yaml").behaviours) == set(claims.behaviours)


@pytest.mark.parametrize("data, line", [
    ("claims: [", "not YAML"),
    ({"claim": []}, "claim: must be one of the known keys (behaviours, claims) (got 'claim')"),
    ({"claims": [{"id": "lower-1"}]}, "claim lower-1: id: must be an ID like SHOP-1"),
    ({"claims": [{"id": "A-1"}]}, "claim A-1: must be a mapping with exactly one of reach, can-i, admission"),
    ({"claims": [{"title": "no id", "can-i": {}}]},
     "claim #1: can-i.subject: is missing or empty; it must be a mapping with exactly one of user, group, serviceaccount"),
    ({"claims": [{"id": "A-1", "reach": {"from": {"namespace": "a"}, "to": {"service": "a/b", "ip": "10.0.0.1"},
                                         "port": 80, "expect": "allowed"}}]},
     "claim A-1: reach.to: must be a mapping with exactly one of namespace + pods, service, ip"),
    ({"claims": [{"id": "A-1", "reach": {"from": {"namespace": "a"}, "to": {"ip": "10.0.0.300"}, "port": 80,
                                         "expect": "allowed"}}]}, "claim A-1: reach.to.ip: must be an IPv4 or IPv6 address (got '10.0.0.300')"),
    ({"claims": [{"id": "A-1", "reach": {"from": {"namespace": "a"}, "to": {"ip": "10.0.0.1"}, "port": 0,
                                         "expect": "allowed"}}]}, "claim A-1: reach.port: must be a port from 1 to 65535 (got 0)"),
    ({"claims": [{"id": "A-1", "reach": {"from": {"namespace": "a"}, "to": {"ip": "10.0.0.1"}, "port": 80,
                                         "protocol": "UDP", "expect": "allowed"}}]},
     "claim A-1: reach.port: a UDP claim is judged by a DNS reply, so its port must be 53"),
    ({"claims": [{"id": "A-1", "can-i": {"subject": {"group": "g"}, "verb": "get", "resource": "pods", "expect": "no"}},
                 {"id": "A-1", "can-i": {"subject": {"group": "g"}, "verb": "get", "resource": "pods", "expect": "no"}}]},
     "claim A-1: id: A-1 is used twice"),
    ({"claims": [{"id": "RBAC-1", "can-i": {"subject": {"group": "g"}, "verb": "get", "resource": "pods", "expect": "no"}}]},
     "claim RBAC-1: id: RBAC-1 is used twice (or is a built-in behaviour ID)"),
    ({"claims": [{"id": "A-1", "admission": {"namespace": "a", "file": "missing.yaml", "expect": "refused"}}]},
     "claim A-1: admission.file: cannot read"),
])
def test_a_bad_claims_file_is_one_line_naming_the_claim_and_field(tmp_path, data, line):
    path = write(tmp_path, data)
    with pytest.raises(K8sSecError) as err:
        load_claims(path)
    message = str(err.value)
    assert message.startswith(f"claims file {path}: ") and line in message and "\n" not in message, message


@pytest.mark.parametrize("protocol, status, output, outcome", [
    ("TCP", 0, "", Outcome.ALLOWED),
    ("TCP", 143, "", Outcome.BLOCKED),
    ("TCP", 1, "nc: can't connect to remote host (10.0.0.1): Connection refused", Outcome.BLOCKED),
    ("TCP", 1, "nc: bad address 'x'", Outcome.ERROR),
    ("UDP", 0, "Server: 10.0.0.10 Address: 10.0.0.10:53 Name: kubernetes.default.svc.cluster.local Address: 10.96.0.1",
     Outcome.ALLOWED),
    ("UDP", 1, "** server can't find nothing.example: NXDOMAIN", Outcome.ALLOWED),
    ("UDP", 1, ";; connection timed out; no servers could be reached", Outcome.BLOCKED),
    ("UDP", 0, "", Outcome.ERROR),  # exit 0 with no answer printed is no reply
    ("UDP", 127, "sh: busybox: not found", Outcome.ERROR),
])
def test_a_probe_reads_a_connection_or_a_dns_reply_and_never_a_send(protocol, status, output, outcome):
    assert classify(protocol, status, output)[0] == outcome


def test_the_probe_script_runs_every_target_at_once_with_its_own_timeout():
    udp, tcp = Target("dns", "10.0.0.10", 53, "UDP"), Target("db", "10.0.0.2", 5432, "TCP")
    text = script({t.id: command(t, "kubernetes.default") for t in (udp, tcp)})
    assert "probe udp:10.0.0.10:53 timeout 3 busybox nslookup kubernetes.default 10.0.0.10 &" in text
    assert "probe tcp:10.0.0.2:5432 timeout 3 busybox nc 10.0.0.2 5432 -e true &" in text
    assert text.rstrip().endswith("wait")


FRONT, API = Source("web", (("app", "frontend"),)), Source("web", (("app", "api"),))
DB = Target("data/db-0", "10.0.0.2", 5432, "TCP")
A, B = (Outcome.ALLOWED, "connected"), (Outcome.BLOCKED, "no answer")


def blocked(**kw) -> Reach:
    from pytest_k8ssec.claims import Destination
    return Reach(FRONT, Destination("data", (("app", "db"),)), 5432, "TCP", False, **kw)


@pytest.mark.parametrize("cells, controls, reach, verdict", [
    ([Cell(FRONT, DB, (B, B))], [Cell(API, DB, (A, A))], blocked(control=API), "pass"),
    ([Cell(FRONT, DB, (A, A))], [Cell(API, DB, (A, A))], blocked(control=API), "fail"),
    ([Cell(FRONT, DB, (B, B))], [Cell(API, DB, (B, B))], blocked(control=API), "not observed"),  # down, or blocked?
    ([Cell(FRONT, DB, (B, B))], [], blocked(), "not observed"),                                  # no control at all
    ([Cell(FRONT, DB, (B, B))], [], blocked(no_control="the db only listens to itself"), "pass"),
    ([Cell(FRONT, DB, (A, B))], [Cell(API, DB, (A, A))], blocked(control=API), "fail"),          # the rounds differ
])
def test_blocked_needs_its_positive_control_and_two_matching_rounds(cells, controls, reach, verdict):
    judgement = judge("X-1", reach, cells, controls, [API] if controls else [], lambda s, t: ["data/db-in (ingress)"])
    assert judgement.verdict == verdict, judgement.message
    if verdict == "fail" and cells[0].outcome == Outcome.ALLOWED:
        assert judgement.message == ("X-1: web{app=frontend} -> data/db-0 (10.0.0.2):5432/TCP: allowed (connected) / "
                                     "allowed (connected) (expected blocked); policies in force: data/db-in (ingress)")


def test_a_waiver_may_name_a_claim_of_the_users_own(tmp_path):
    from pytest_k8ssec.waivers import load_waivers
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers: [{id: SHOP-3, reason: r, owner: o, expires: 2027-01-31}]\n")
    with pytest.raises(K8sSecError, match=r"id: must be a behaviour ID of the run or a case"):
        load_waivers(path)
    assert load_waivers(path, load_claims(SHOP / "claims.yaml").behaviours)[0].id == "SHOP-3"
