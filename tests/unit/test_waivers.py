"""Waivers: loading the file, and what a waived, expired or no longer needed waiver does to the verdict."""

import datetime

import pytest

from pytest_k8ssec.certification import certify
from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.waivers import Waiver, load_waivers

DAY = datetime.date(2026, 12, 1)


def _records(netpol2: str = "fail") -> list[dict]:
    return [{"case": "test_netpol.py::test_default_deny_blocks_every_client", "behaviour": "NETPOL-2", "verdict": netpol2},
            {"case": "test_rbac.py::test_x", "behaviour": "RBAC-2", "verdict": "pass"}]


def _waiver(ident: str = "NETPOL-2", expires: datetime.date = DAY) -> Waiver:
    return Waiver(ident, "CNI upgrade in January", "platform@example.com", expires)


@pytest.mark.parametrize("ident", ["NETPOL-2", "test_default_deny_blocks_every_client",
                                   "test_netpol.py::test_default_deny_blocks_every_client"])
def test_a_valid_waiver_turns_the_failure_into_waived_and_the_run_certified(ident):
    c = certify(_records(), ["NETPOL-2", "RBAC-2"], {}, waivers=[_waiver(ident)], today=DAY)
    assert c.verdict == "certified" and [b.behaviour for b in c.waived] == ["NETPOL-2"]
    assert c.lines()[0] == "CERTIFIED: every required behaviour was observed (1 pass, 1 waived)"
    assert "CNI upgrade in January (owner platform@example.com, until 2026-12-01)" in c.lines()[1]


def test_the_day_after_its_expiry_a_waiver_fails_the_run():
    c = certify(_records(), ["NETPOL-2", "RBAC-2"], {}, waivers=[_waiver()], today=DAY + datetime.timedelta(days=1))
    assert c.verdict == "not certified"
    assert c.lines()[0] == "NOT CERTIFIED: NETPOL-2, waivers (1 pass, 1 fail)"
    assert "  waiver for NETPOL-2 expired on 2026-12-01 (owner platform@example.com): fix it, or renew it" in c.lines()


def test_a_waiver_whose_cases_pass_is_reported_and_fails_only_when_strict():
    loose = certify(_records("pass"), ["NETPOL-2", "RBAC-2"], {}, waivers=[_waiver()], today=DAY)
    assert loose.verdict == "certified" and "no longer needed" in loose.lines()[-1]
    strict = certify(_records("pass"), ["NETPOL-2", "RBAC-2"], {}, waivers=[_waiver()], today=DAY, strict_waivers=True)
    assert strict.verdict == "not certified" and any("no longer needed" in line for line in strict.lines())


def test_a_waiver_for_another_case_leaves_the_failure_failed():
    c = certify(_records(), ["NETPOL-2", "RBAC-2"], {}, waivers=[_waiver("test_other")], today=DAY)
    assert c.verdict == "not certified" and [b.behaviour for b in c.failed] == ["NETPOL-2"]


@pytest.mark.parametrize("text, message", [
    ("waivers: [{id: NETPOL-2, reason: r, owner: o}]", "entry 1 (NETPOL-2): expires: is missing or empty; it must be a date"),
    ("waivers: [{id: NOPE-1, reason: r, owner: o, expires: 2027-01-01}]",
     "entry 1 (NOPE-1): id: must be a behaviour ID of the run or a case (test_...) (got 'NOPE-1')"),
    ("waivers: [{id: RBAC-2, reason: r, owner: o, expires: soon}]", "entry 1 (RBAC-2): expires: must be a date like 2026-12-31 (got 'soon')"),
    ("waivers: [{id: RBAC-2, reason: r, owner: o, expires: 2027-02-30}]", "entry 1 (RBAC-2): expires: must be a date"),
    ("waivers: [{id: RBAC-2, reason: r, owner: o, expires: 2027-01-01, until: x}]",
     "entry 1 (RBAC-2): until: must be one of the known keys (expires, id, owner, reason)"),
    ("waivers: [{id: RBAC-2, reason: '', owner: o, expires: 2027-01-01}]", "entry 1 (RBAC-2): reason: must be a non-empty string"),
    ("waivers: [not a mapping]", "entry 1: must be a waiver: a mapping with id, reason, owner and expires"),
    ("- id: RBAC-2", "must be a waivers file: a mapping with a list under waivers"),
])
def test_a_malformed_waivers_file_is_one_line_naming_the_entry(tmp_path, text, message):
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(K8sSecError) as err:
        load_waivers(path)
    assert str(err.value).startswith(f"waivers file {path}: ") and message in str(err.value) and "\n" not in str(err.value)


def test_the_expiry_is_read_as_the_date_written(tmp_path):
    """The schema checks the text of the date (YAML would make it a date object first), then it is parsed."""
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers: [{id: NETPOL-2, reason: r, owner: o, expires: 2027-01-31}, {id: test_x, reason: r, owner: o, "
                    "expires: '2027-02-01'}]\n")
    assert [w.expires for w in load_waivers(path)] == [datetime.date(2027, 1, 31), datetime.date(2027, 2, 1)]
