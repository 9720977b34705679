"""Waivers: known failures a team accepts for a while, kept in its own repository.

    waivers:
      - id: NETPOL-2                 # a behaviour ID, or a case (test_netpol.py::test_x[param] or test_x[param])
        reason: the CNI upgrade lands in January
        owner: platform-team@example.com
        expires: 2027-01-31          # the last day the waiver holds

A waived failure is reported as "waived", never as a pass. A waiver past its expiry fails the
run: exceptions must not outlive the date someone promised. A waiver whose cases now pass is
reported so it can be removed (`--k8s-sec-strict-waivers` fails the run on it).

The file is validated against the published JSON Schema (`schemas/waivers.schema.json`); whether
an ID is one of the run's behaviours is checked in code, against the run's catalogue.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .behaviours import BEHAVIOURS
from .errors import K8sSecError, must
from .schema import load_yaml, violation


@dataclass(frozen=True)
class Waiver:
    id: str
    reason: str
    owner: str
    expires: datetime.date

    def covers(self, behaviour: str, case: str) -> bool:
        """A behaviour waiver covers all its cases; a case waiver its case, named with or without the module."""
        return self.id == behaviour or self.id == case or self.id == case.split("::", 1)[-1]

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def __str__(self) -> str:
        return f"{self.reason} (owner {self.owner}, until {self.expires.isoformat()})"


def today() -> datetime.date:
    """The date waivers are judged on: today in UTC, or K8SSEC_TODAY (YYYY-MM-DD) to judge a run as of another day."""
    value = os.environ.get("K8SSEC_TODAY")
    if not value:
        return datetime.datetime.now(datetime.timezone.utc).date()
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise K8sSecError(f"K8SSEC_TODAY must be a date like 2026-12-31, not {value!r}") from None


def load_waivers(path: Path | None, catalogue: Mapping[str, str] = BEHAVIOURS) -> list[Waiver]:
    """The waivers of a file, of the run's behaviour IDs (the user's own too); a malformed one is one error line
    naming the entry."""
    if path is None:
        return []
    try:
        data = load_yaml(path.read_text())
    except OSError as exc:
        raise K8sSecError(f"cannot read the waivers file {path}: {exc.strerror}; pass a readable --k8s-sec-waivers") from None
    except yaml.YAMLError as exc:
        raise K8sSecError(f"waivers file {path} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    found = violation("waivers", data)
    if found:
        entry = found.entry(data, "waivers")
        raise K8sSecError(f"waivers file {path}: {_entry(*entry) + found.line(2) if entry else found.line()}")
    waivers = [Waiver(e["id"], e["reason"], e["owner"], datetime.date.fromisoformat(e["expires"])) for e in data["waivers"]]
    for number, waiver in enumerate(waivers, 1):
        if "::" not in waiver.id and not waiver.id.startswith("test_") and waiver.id not in catalogue:
            raise K8sSecError(f"waivers file {path}: {_entry(number, waiver.id)}"
                              f"{must('id', 'a behaviour ID of the run or a case (test_...)', waiver.id)}")
    return waivers


def _entry(number: int, ident: Any) -> str:
    return f"entry {number} ({ident}): " if ident else f"entry {number}: "
