"""The certification verdict: what counts as observed, and what a run that saw too little says."""

from pytest_k8ssec.certification import CERTIFIED, NOT_CERTIFIED, PARTIAL, certify


def rec(behaviour: str, verdict: str, case: str = "", reason: str = "") -> dict:
    return {"behaviour": behaviour, "verdict": verdict, "case": case or f"test_{behaviour.lower()}", "reason": reason}


def test_every_required_behaviour_passing_is_certified():
    result = certify([rec("RBAC-1", "pass"), rec("RBAC-2", "pass")], ["RBAC-1", "RBAC-2"], {})
    assert result.verdict == CERTIFIED
    assert result.lines()[0] == "CERTIFIED: every required behaviour was observed (2 pass)"


def test_a_skipped_case_leaves_its_behaviour_not_observed_even_beside_a_pass():
    records = [rec("RBAC-2", "pass", "a"), rec("RBAC-2", "skip", "b", "needs a cluster-scoped change")]
    result = certify(records, ["RBAC-2"], {})
    assert result.verdict == NOT_CERTIFIED
    assert result.lines() == ["NOT CERTIFIED: RBAC-2 (1 not observed)",
                              "  RBAC-2 not observed: b skipped: needs a cluster-scoped change"]


def test_a_behaviour_with_no_case_run_is_not_observed():
    result = certify([rec("RBAC-1", "pass")], ["RBAC-1", "AUDIT-1"], {})
    assert result.verdict == NOT_CERTIFIED
    assert [b.behaviour for b in result.not_observed] == ["AUDIT-1"]
    assert result.not_observed[0].why == "no case of it ran"


def test_partial_is_accepted_only_when_asked_and_never_over_a_failure():
    records = [rec("RBAC-1", "pass"), rec("AUDIT-1", "skip", reason="no audit log")]
    assert certify(records, ["RBAC-1", "AUDIT-1"], {}, accept_partial=True).verdict == PARTIAL
    assert certify(records, ["RBAC-1", "AUDIT-1"], {}).verdict == NOT_CERTIFIED
    failing = [*records, rec("RBAC-1", "fail", "c")]
    assert certify(failing, ["RBAC-1", "AUDIT-1"], {}, accept_partial=True).verdict == NOT_CERTIFIED


def test_not_applicable_counts_neither_way():
    records = [rec("NETPOL-5", "pass", "a"), rec("NETPOL-5", "n/a", "b", "not applicable: one node"),
               rec("NETPOL-1", "n/a", reason="not applicable: no enforcement expected")]
    result = certify(records, ["NETPOL-1", "NETPOL-5", "AUDIT-1"], {"AUDIT-1": "the provider hides the log"})
    assert result.verdict == CERTIFIED
    statuses = {b.behaviour: b.status for b in result.behaviours}
    assert statuses == {"NETPOL-1": "not applicable", "NETPOL-5": "pass", "AUDIT-1": "not applicable"}


def test_errors_fail_the_behaviour_and_name_the_case():
    result = certify([rec("PSP-3", "error", "test_controller")], ["PSP-3"], {})
    assert result.verdict == NOT_CERTIFIED
    assert result.failed[0].why == "failed: test_controller"


def test_a_certificate_for_selected_behaviours_says_so():
    result = certify([rec("RBAC-2", "pass")], ["RBAC-2"], {}, selected=True)
    assert result.lines() == ["CERTIFIED: every required behaviour was observed (1 pass) for the selected behaviours only: RBAC-2"]
    assert result.document()["selected_only"] is True


def test_a_run_whose_every_behaviour_was_not_applicable_observed_nothing():
    records = [rec("NETPOL-5", "n/a", reason="not applicable: one node")]
    result = certify(records, ["NETPOL-5", "AUDIT-1"], {"AUDIT-1": "the provider hides the log"}, selected=True)
    assert result.verdict == NOT_CERTIFIED and result.nothing_observed
    assert result.lines() == ["NOT CERTIFIED: nothing observed (2 not applicable)",
                              "  NETPOL-5 not applicable: not applicable: one node",
                              "  AUDIT-1 not applicable: the profile says: the provider hides the log"]
    document = result.document()
    assert document["verdict"] == NOT_CERTIFIED and document["nothing_observed"] is True
    assert document["behaviours"]["AUDIT-1"]["why"] == "the profile says: the provider hides the log"
    assert certify(records, ["NETPOL-5", "AUDIT-1"], {"AUDIT-1": "hidden"}, accept_partial=True).verdict == NOT_CERTIFIED
