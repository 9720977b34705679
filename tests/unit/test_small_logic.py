"""Pure logic: behaviour selection, go.mod generation, audit judging, can-i matrices, report rendering."""

import pytest

from pytest_k8ssec.access import Matrix
from pytest_k8ssec.audit import Expected, judge, parse_events
from pytest_k8ssec.behaviours import parse_selection
from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.local.build import kubernetes_gomod, version_ldflags
from pytest_k8ssec.report import render_markdown

UPSTREAM = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	k8s.io/api v0.0.0
	github.com/x/y v1.2.3
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_selection_accepts_known_ids_and_names_unknown_ones():
    assert parse_selection("rbac-2, NETPOL-1") == {"RBAC-2", "NETPOL-1"}
    assert parse_selection(None) is None
    with pytest.raises(K8sSecError, match="unknown behaviour ID RBAC-9 in --k8s-sec-behaviours"):
        parse_selection("RBAC-2,RBAC-9")


def test_gomod_replaces_each_staging_module_with_its_published_version():
    text = kubernetes_gomod(UPSTREAM, "v1.37.2")
    assert "require k8s.io/kubernetes v1.37.2" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2" in text and "\tk8s.io/client-go => k8s.io/client-go v0.37.2" in text
    assert "go 1.26.0" in text and "godebug default=go1.26" in text
    assert "github.com/x/y" not in text  # the release's own requirements come in through the module graph


def test_gomod_rejects_a_malformed_version():
    with pytest.raises(K8sSecError, match="must look like v1.Y.Z"):
        kubernetes_gomod(UPSTREAM, "1.37")


def test_version_is_stamped_for_server_and_client_packages():
    flags = version_ldflags("v1.36.3")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.36.3" in flags and f"-X {pkg}.gitMinor=36" in flags


def _event(verb, resource, sub="", ns="dev", code=200, level="Metadata", stage="ResponseComplete", user="admin"):
    ref = {"resource": resource, "namespace": ns}
    if sub:
        ref["subresource"] = sub
    return {"kind": "Event", "stage": stage, "level": level, "verb": verb, "objectRef": ref,
            "user": {"username": user}, "responseStatus": {"code": code}, "userAgent": "tag/1"}


def test_audit_judge_reports_missing_wrong_unexpected_and_request_received():
    expected = [Expected("create", "pods", "", "dev", 201, "Metadata"), Expected("get", "pods", "log", "dev", 200, "Metadata"),
                Expected("delete", "pods", "", "dev", 200, "Metadata"), Expected("list", "configmaps", "", "dev", 200, None)]
    events = [_event("create", "pods", code=201), _event("get", "pods", "log", code=500),
              _event("list", "configmaps"), _event("create", "pods", stage="RequestReceived")]
    v = judge(events, expected, "admin")
    assert v.missing == ["delete pods in dev -> 200"]
    assert len(v.wrong) == 1 and "get pods/log" in v.wrong[0]
    assert v.unexpected == ["list configmaps in dev -> 200 (level Metadata)"]
    assert v.request_received == 1 and not v.ok
    assert "expected events missing from the audit log" in v.render()


def test_audit_events_parse_skips_partial_lines():
    assert len(parse_events('{"kind":"Event","verb":"get"}\n{"kind":"Ev\nnot json\n')) == 1


def test_matrix_marks_mismatches():
    m = Matrix([("create pods in tenant", True, True), ("get pods/log in tenant", False, True)])
    text = m.render()
    assert m.mismatches == [("get pods/log in tenant", False, True)]
    assert "get pods/log in tenant  no        yes        <-- MISMATCH" in text


def _report(records: list[dict], required: list[str], **kw) -> dict:
    from pytest_k8ssec.certification import certify

    return {"certification": certify(records, required, {}, **kw).document(), "generated": "t", "profile": "p",
            "cluster": {"provider": "local", "version": "v1.37.2", "netpol_enforcer": "kube-router"},
            "summary": {"pass": 1}, "notes": ["removed leftovers"], "cases": records}


def test_markdown_report_lists_each_case():
    record = {"case": "test_x", "behaviour": "RBAC-2", "mechanism": "SAR", "verdict": "pass", "evidence": {"checked": 3}}
    text = render_markdown(_report([record], ["RBAC-2"]))
    assert "| RBAC-2 | `test_x` | SAR | **pass** | checked: 3 |" in text
    assert "- removed leftovers" in text and "local v1.37.2" in text
    assert text.splitlines()[2] == "**Verdict: CERTIFIED**"


@pytest.mark.parametrize("accept, first", [(False, "**Verdict: NOT CERTIFIED**"),
                                           (True, "**Verdict: PARTIAL** (a partial certification, accepted with --k8s-sec-accept-partial)")])
def test_markdown_report_of_a_run_that_saw_too_little_says_so_first(accept, first):
    records = [{"case": "test_x", "behaviour": "RBAC-2", "mechanism": "", "verdict": "pass", "evidence": {}},
               {"case": "test_a", "behaviour": "AUDIT-1", "mechanism": "", "verdict": "skip", "evidence": {}, "reason": "no log"}]
    lines = render_markdown(_report(records, ["RBAC-2", "AUDIT-1"], accept_partial=accept)).splitlines()
    assert lines[2] == first
    assert lines[4] == "- AUDIT-1: not observed: test_a skipped: no log"


@pytest.mark.parametrize("git, major, minor, ok", [
    ("v1.37.2", "1", "37", True), ("v1.30.0-gke.1", "1", "30+", True),
    ("v1.29.9", "1", "29", False), ("v1.25.0", "1", "25", False), ("v2.0.0", "2", "0", False)])
def test_supported_server_versions(git, major, minor, ok):
    from pytest_k8ssec.errors import K8sSecError
    from pytest_k8ssec.kube import supported_version

    if ok:
        assert supported_version(git, major, minor).git_version == git
    else:
        with pytest.raises(K8sSecError, match=f"runs Kubernetes {git}; pytest-k8ssec needs 1.30 or newer.*upgrade"):
            supported_version(git, major, minor)


def test_audit_on_a_cluster_recording_more_accepts_levels_at_or_above_the_profile():
    expected = [Expected("get", "pods", "log", "ns", 200, "Metadata"), Expected("list", "configmaps", "", "ns", 200, None)]
    events = [{"stage": "ResponseComplete", "verb": v, "level": lvl, "user": {"username": "me"},
               "objectRef": {"resource": r, "subresource": s, "namespace": "ns"}, "responseStatus": {"code": 200}}
              for v, r, s, lvl in [("get", "pods", "log", "RequestResponse"), ("list", "configmaps", "", "Metadata")]]
    assert not judge(events, expected, "me", exact=True).ok  # our own cluster: the profile's policy exactly
    assert judge(events, expected, "me", exact=False).ok
    events[0]["level"] = "None"
    assert "(level or above)" in judge(events, expected, "me", exact=False).render()
