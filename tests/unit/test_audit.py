"""Judging audit events against the requests the suite made (AUDIT-1)."""

from pytest_k8ssec.audit import Expected, judge, parse_events


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


def test_audit_on_a_cluster_recording_more_accepts_levels_at_or_above_the_profile():
    expected = [Expected("get", "pods", "log", "ns", 200, "Metadata"), Expected("list", "configmaps", "", "ns", 200, None)]
    events = [{"stage": "ResponseComplete", "verb": v, "level": lvl, "user": {"username": "me"},
               "objectRef": {"resource": r, "subresource": s, "namespace": "ns"}, "responseStatus": {"code": 200}}
              for v, r, s, lvl in [("get", "pods", "log", "RequestResponse"), ("list", "configmaps", "", "Metadata")]]
    assert not judge(events, expected, "me", exact=True).ok  # our own cluster: the profile's policy exactly
    assert judge(events, expected, "me", exact=False).ok
    events[0]["level"] = "None"
    assert "(level or above)" in judge(events, expected, "me", exact=False).render()
