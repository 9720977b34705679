"""The baseline diff on stored reports: what regressed, what was fixed, which cells moved."""

import copy
import json

import pytest

from pytest_k8ssec.baseline import SCHEMA, baseline_lines, compare, load_report, regressions
from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.render import render_html, render_markdown


def _case(case, behaviour, verdict="pass", mechanism="m", **evidence):
    return {"case": case, "behaviour": behaviour, "verdict": verdict, "mechanism": mechanism, "evidence": evidence}


def _report(cases, version="v1.36.3", behaviours=("RBAC-2", "NETPOL-2", "PSP-2"), schema=SCHEMA):
    return {"schema": schema, "generated": "2026-11-01T00:00:00+00:00", "profile": "p", "notes": [], "summary": {},
            "cluster": {"provider": "local", "version": version, "netpol_enforcer": "kube-router", "details": {}},
            "certification": {"verdict": "certified", "partial_accepted": False,
                              "behaviours": {b: {"status": "pass", "why": ""} for b in behaviours}},
            "cases": cases}


MATRIX = [{"can-i": "create pods", "expected": "yes", "observed": "yes"},
          {"can-i": "get secrets", "expected": "no", "observed": "no"}]
TABLE = {"expected": {"tenant/access -> tenant/nginx-0 port 8080/TCP (http)": "BLOCKED"},
         "observed": {"tenant/access -> tenant/nginx-0 port 8080/TCP (http)": "BLOCKED"}}
OLD = _report([_case("test_rbac.py::test_can_i[sar]", "RBAC-2", matrix=MATRIX),
               _case("test_netpol.py::test_deny", "NETPOL-2", table=TABLE),
               _case("test_admission.py::test_restricted", "PSP-2", mechanism="Pod Security Admission")])


def _kinds(comparison):
    return [(c["kind"], c["case"]) for c in comparison["changes"]]


def test_an_unchanged_run_has_no_change_and_says_the_version_moved():
    comparison = compare(OLD, _report(copy.deepcopy(OLD["cases"]), version="v1.37.2"))
    assert comparison["changes"] == [] and comparison["version_change"] == "v1.36.3 -> v1.37.2"
    assert baseline_lines(comparison)[0].endswith("; Kubernetes v1.36.3 -> v1.37.2): no change")


def test_a_flipped_can_i_cell_is_a_change_with_its_cell():
    new = copy.deepcopy(OLD)
    new["cases"][0]["evidence"]["matrix"][1]["observed"] = "yes"
    new["cases"][0]["verdict"] = "fail"
    [change] = compare(OLD, new)["changes"]
    assert (change["kind"], change["detail"]) == ("regressed", "pass -> fail")
    assert change["cells"] == ["matrix: get secrets: no -> yes"]


def test_an_opened_truth_table_cell_shows_while_the_verdict_holds():
    new = copy.deepcopy(OLD)
    new["cases"][1]["evidence"]["table"]["observed"]["tenant/access -> tenant/nginx-0 port 8080/TCP (http)"] = "ALLOWED"
    [change] = compare(OLD, new)["changes"]
    assert change["kind"] == "changed"
    assert change["cells"] == ["table: tenant/access -> tenant/nginx-0 port 8080/TCP (http): BLOCKED -> ALLOWED"]


def test_pass_to_skip_regresses_and_a_mechanism_change_is_named():
    new = copy.deepcopy(OLD)
    new["cases"][1].update(verdict="skip", reason="no enforcer")
    new["cases"][2]["mechanism"] = "ValidatingAdmissionPolicy"
    comparison = compare(OLD, new)
    assert _kinds(comparison) == [("regressed", "test_netpol.py::test_deny"), ("changed", "test_admission.py::test_restricted")]
    assert [str(r) for r in regressions(comparison)] == ["NETPOL-2 test_netpol.py::test_deny: pass -> skip: no enforcer"]
    assert "mechanism: 'Pod Security Admission' -> 'ValidatingAdmissionPolicy'" in comparison["changes"][1]["detail"]


def test_a_missing_case_regresses_a_new_one_is_listed_and_fixed_is_fixed():
    old = copy.deepcopy(OLD)
    old["cases"][2]["verdict"] = "fail"
    new = copy.deepcopy(OLD)
    del new["cases"][0]
    new["cases"].append(_case("test_netpol.py::test_egress", "NETPOL-2"))
    assert _kinds(compare(old, new)) == [("regressed", "test_rbac.py::test_can_i[sar]"),
                                         ("new", "test_netpol.py::test_egress"),
                                         ("fixed", "test_admission.py::test_restricted")]


def test_behaviours_one_run_did_not_require_are_not_compared():
    new = _report([OLD["cases"][0]], behaviours=("RBAC-2",))
    comparison = compare(OLD, new)
    assert comparison["changes"] == []
    assert comparison["not_compared"] == ["NETPOL-2: required by one run only", "PSP-2: required by one run only"]


def test_an_older_schema_is_compared_on_verdicts_and_says_what_it_could_not():
    old = _report([_case("test_netpol.py::test_deny", "NETPOL-2")], behaviours=("NETPOL-2",), schema=0)
    del old["schema"]
    new = _report([_case("test_netpol.py::test_deny", "NETPOL-2", table=TABLE)], behaviours=("NETPOL-2",))
    comparison = compare(old, new)
    assert comparison["changes"] == [] and "schema 0" in comparison["not_compared"][0]


def test_the_markdown_report_shows_the_changes_with_their_cells():
    new = copy.deepcopy(OLD)
    new["cases"][0]["evidence"]["matrix"][1]["observed"] = "yes"
    new["cases"][0]["verdict"] = "fail"
    new["since_baseline"] = compare(OLD, new)
    text = render_markdown(new)
    assert "## Changes since baseline" in text
    assert "- **regressed** RBAC-2 `test_rbac.py::test_can_i[sar]`: pass -> fail\n  - matrix: get secrets: no -> yes" in text
    page = render_html({**new, "summary": {}})
    assert "<h2>Changes since baseline</h2>" in page and "<code>matrix: get secrets: no -&gt; yes</code>" in page


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the report"), ("{", "is not JSON"), ('{"a": 1}', "is not a k8s-sec report"),
    (json.dumps({**OLD, "schema": SCHEMA + 1}), "written by a newer pytest-k8ssec")])
def test_a_bad_baseline_is_one_line_saying_what_to_pass(tmp_path, content, message):
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(K8sSecError, match=message):
        load_report(path)


def test_an_unmarked_case_and_a_users_claim_are_compared_too():
    old = _report([_case("test_mine.py::test_helper", ""), _case("test_claim[SHOP-3]", "SHOP-3")],
                  behaviours=("SHOP-3",))
    new = _report([_case("test_mine.py::test_helper", "", "fail"), _case("test_claim[SHOP-3]", "SHOP-3", "fail")],
                  behaviours=("SHOP-3",))
    assert _kinds(compare(old, new)) == [("regressed", "test_claim[SHOP-3]"), ("regressed", "test_mine.py::test_helper")]
