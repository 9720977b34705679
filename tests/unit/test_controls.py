"""The control mapping: every documented behaviour has an entry, entries are well formed, capabilities credit none."""

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from pytest_k8ssec import controls
from pytest_k8ssec.behaviours import BEHAVIOURS, CAPABILITY, CLAIMS, POSTURE
from pytest_k8ssec.controls import frameworks, mappings

SPEC = Path(__file__).resolve().parents[3] / "shared" / "BEHAVIOURS.md"


def test_every_behaviour_of_the_spec_is_mapped_or_says_why_not():
    text = SPEC.read_text()
    documented = set(re.findall(r"^- ([A-Z]+-\d+) ", text, re.MULTILINE))
    planned = set(re.findall(r"^- planned ([A-Z]+-\d+):", text, re.MULTILINE))
    # A planned ID whose cases exist is in the catalogue before the spec (shared, read-only here) moves it up.
    assert documented <= set(BEHAVIOURS), f"the catalogue lacks {sorted(documented - set(BEHAVIOURS))}"
    assert set(BEHAVIOURS) - documented <= planned, \
        f"the catalogue has IDs the spec does not: {sorted(set(BEHAVIOURS) - documented - planned)}"
    documented = set(BEHAVIOURS)
    unmapped = documented - set(mappings())
    assert not unmapped, f"add these to pytest_k8ssec/controls.yaml (controls, or `none: why`): {sorted(unmapped)}"
    assert not set(mappings()) - documented, "controls.yaml maps behaviours the spec does not have"


def test_entries_name_a_known_framework_and_coverage_or_a_reason():
    for behaviour, entry in mappings().items():
        assert entry.controls or entry.none, behaviour
        assert all(c.framework in frameworks() for c in entry.controls), behaviour
    assert str(mappings()["RBAC-3"]).startswith("no control: ")
    assert "CIS 5.3.1 Ensure that the CNI in use supports NetworkPolicies;" in str(mappings()["NETPOL-2"])


def test_a_capability_behaviour_maps_to_no_posture_control():
    """Shown with the suite's own objects, it is no evidence of the cluster's configuration."""
    raw = yaml.safe_load((resources.files("pytest_k8ssec") / "controls.yaml").read_text())["behaviours"]
    assert set(CLAIMS) == set(BEHAVIOURS) and set(CLAIMS.values()) == {CAPABILITY, POSTURE}
    credited = {b: entry for b, entry in raw.items() if CLAIMS[b] == CAPABILITY and not isinstance(entry, dict)}
    assert not credited, f"capability behaviours credited with posture controls: {sorted(credited)}"
    for behaviour, kind in CLAIMS.items():
        if kind == CAPABILITY:
            assert not mappings()[behaviour].controls and mappings()[behaviour].none, behaviour
    assert {CLAIMS[b] for b in ("PSP-1", "PSP-2", "PSP-3", "PSP-4", "EXC-1", "RBAC-3")} == {CAPABILITY}
    assert {CLAIMS[b] for b in ("PRIV-1", "RBAC-2", "NETPOL-2", "AUDIT-1")} == {POSTURE}
    cis_5_2_1 = {b for b, m in mappings().items() if any(c.control.startswith("5.2.1 ") for c in m.controls)}
    assert cis_5_2_1 == {"PRIV-1"}, "CIS 5.2.1 is the cluster's own policy mechanism, not the suite's gate"


def test_a_capability_behaviour_credited_with_a_control_is_refused(monkeypatch):
    data = yaml.safe_load((resources.files("pytest_k8ssec") / "controls.yaml").read_text())
    data["behaviours"]["PSP-1"] = data["behaviours"]["PRIV-1"]
    monkeypatch.setattr(controls, "_load", lambda: data)
    controls.mappings.cache_clear()
    try:
        with pytest.raises(ValueError, match="PSP-1 is a capability claim"):
            controls.mappings()
    finally:
        controls.mappings.cache_clear()
