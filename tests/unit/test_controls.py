"""The control mapping: every documented behaviour has an entry, and entries are well formed."""

import re
from pathlib import Path

from pytest_k8ssec.behaviours import BEHAVIOURS
from pytest_k8ssec.controls import frameworks, mappings

SPEC = Path(__file__).resolve().parents[3] / "shared" / "BEHAVIOURS.md"


def test_every_behaviour_of_the_spec_is_mapped_or_says_why_not():
    documented = set(re.findall(r"^- ([A-Z]+-\d+) ", SPEC.read_text(), re.MULTILINE))
    assert documented == set(BEHAVIOURS), "BEHAVIOURS.md and the catalogue differ"
    unmapped = documented - set(mappings())
    assert not unmapped, f"add these to pytest_k8ssec/controls.yaml (controls, or `none: why`): {sorted(unmapped)}"
    assert not set(mappings()) - documented, "controls.yaml maps behaviours the spec does not have"


def test_entries_name_a_known_framework_and_coverage_or_a_reason():
    for behaviour, entry in mappings().items():
        assert entry.controls or entry.none, behaviour
        assert all(c.framework in frameworks() for c in entry.controls), behaviour
    assert str(mappings()["RBAC-3"]).startswith("no control: ")
    assert "CIS 5.3.1 Ensure that the CNI in use supports NetworkPolicies;" in str(mappings()["NETPOL-2"])
