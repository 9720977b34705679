"""The run's configuration is frozen, and the recorder keeps one typed record per case."""

import dataclasses

import pytest

from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.recorder import CaseRecord, Recorder
from pytest_k8ssec.runconfig import RunConfig
from pytest_k8ssec.settings import Settings


def _case(verdict: str, **kw) -> CaseRecord:
    return CaseRecord(case="test_x", file="conformance/test_x.py", line=3, behaviour="RBAC-2", title="t",
                      mechanism="SAR", verdict=verdict, seconds=0.5, **kw)


def test_a_case_recorded_again_replaces_its_record_and_moves_last():
    recorder = Recorder()
    recorder.record(_case("pass"))
    recorder.record(dataclasses.replace(_case("pass"), case="test_y"))
    recorder.record(_case("error", failure="teardown failed"))
    assert [(c.case, c.verdict) for c in recorder.cases] == [("test_y", "pass"), ("test_x", "error")]
    assert recorder.documents()[1]["failure"] == "teardown failed"
    assert "reason" not in recorder.documents()[1], "an empty field is not written into the report"


def test_a_record_is_typed_and_frozen():
    with pytest.raises(ValueError, match="verdict"):
        _case("passed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        _case("pass").verdict = "fail"


def test_the_run_configuration_is_frozen_and_requires_the_selection_in_catalogue_order():
    run = RunConfig(Settings(), load_profile(), frozenset({"NETPOL-2", "RBAC-1"}))
    assert run.required == ["RBAC-1", "NETPOL-2"]
    assert RunConfig(Settings(), load_profile(), builtin=False).required == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.builtin = False
