"""Which framework controls each behaviour evidences (controls.yaml), for the reports, JUnit and SARIF.

The mapping is data shipped with the package so an auditor can read it beside its sources;
every behaviour has an entry, either its controls or the reason it evidences none. Every
control here is a posture control (it asks about the cluster as configured), so a capability
claim (behaviours.CLAIMS) is credited with none: it gives the reason instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from .behaviours import CAPABILITY, CLAIMS

COVERAGE = ("full", "partial")


@dataclass(frozen=True)
class Control:
    framework: str
    control: str
    coverage: str

    def __str__(self) -> str:
        return f"{self.framework} {self.control}" + (" (partial)" if self.coverage == "partial" else "")


@dataclass(frozen=True)
class Mapping:
    """One behaviour's controls, or why it has none."""

    controls: tuple[Control, ...] = ()
    none: str = ""

    def __str__(self) -> str:
        return "; ".join(map(str, self.controls)) if self.controls else f"no control: {self.none}"


def frameworks() -> dict[str, dict[str, str]]:
    """Each framework's document and how its controls are named."""
    return _load()["frameworks"]


USER_CLAIM = Mapping(none="the user's own claim: map it to controls in your own records")


def mapping_of(behaviour: str) -> Mapping:
    """A behaviour's controls; the user's own IDs map to none."""
    return mappings().get(behaviour, USER_CLAIM)


@functools.cache
def mappings() -> dict[str, Mapping]:
    data = _load()
    known = set(data["frameworks"])
    result = {}
    for behaviour, entry in data["behaviours"].items():
        if isinstance(entry, dict):
            result[behaviour] = Mapping(none=entry["none"])
            continue
        controls = tuple(Control(**c) for c in entry)
        for c in controls:
            if c.framework not in known or c.coverage not in COVERAGE:
                raise ValueError(f"controls.yaml: {behaviour}: {c} names an unknown framework or coverage")
        if CLAIMS.get(behaviour) == CAPABILITY:
            raise ValueError(f"controls.yaml: {behaviour} is a capability claim (shown with the suite's own objects): "
                             "it credits no posture control; say why under `none`")
        result[behaviour] = Mapping(controls)
    return result


@functools.cache
def _load() -> dict:
    return yaml.safe_load((resources.files("pytest_k8ssec") / "controls.yaml").read_text())
