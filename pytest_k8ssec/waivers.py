"""Waivers: known failures a team accepts for a while, kept in its own repository.

    waivers:
      - id: NETPOL-2                 # a behaviour ID, or a case (test_netpol.py::test_x[param] or test_x[param])
        reason: the CNI upgrade lands in January
        owner: platform-team@example.com
        expires: 2027-01-31          # the last day the waiver holds

A waived failure is reported as "waived", never as a pass. A waiver past its expiry fails the
run: exceptions must not outlive the date someone promised. A waiver whose cases now pass is
reported so it can be removed (`--k8s-sec-strict-waivers` fails the run on it).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .behaviours import BEHAVIOURS
from .errors import K8sSecError

FIELDS = ("id", "reason", "owner", "expires")


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
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise K8sSecError(f"cannot read the waivers file {path}: {exc.strerror}; pass a readable --k8s-sec-waivers") from None
    except yaml.YAMLError as exc:
        raise K8sSecError(f"waivers file {path} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    entries = data.get("waivers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise K8sSecError(f"waivers file {path} must hold a list under `waivers:` (entries with {', '.join(FIELDS)})")
    return [_waiver(path, i, entry, catalogue) for i, entry in enumerate(entries, 1)]


def _waiver(path: Path, number: int, entry: Any, catalogue: Mapping[str, str]) -> Waiver:
    where = f"waivers file {path}, entry {number}"
    if not isinstance(entry, dict):
        raise K8sSecError(f"{where}: must be a mapping with {', '.join(FIELDS)}")
    where += f" ({entry.get('id')})" if entry.get("id") else ""
    unknown = sorted(set(entry) - set(FIELDS))
    missing = [f for f in FIELDS if not entry.get(f)]
    if unknown or missing:
        problem = f"unknown key {unknown[0]!r}" if unknown else f"{missing[0]!r} is missing or empty"
        raise K8sSecError(f"{where}: {problem}; an entry has exactly {', '.join(FIELDS)}")
    expires = entry["expires"]
    if isinstance(expires, datetime.datetime):
        expires = expires.date()
    elif not isinstance(expires, datetime.date):
        try:
            expires = datetime.date.fromisoformat(str(expires))
        except ValueError:
            raise K8sSecError(f"{where}: expires must be a date like 2026-12-31, not {expires!r}") from None
    ident = str(entry["id"])
    if "::" not in ident and not ident.startswith("test_") and ident not in catalogue:
        raise K8sSecError(f"{where}: {ident!r} is neither a behaviour ID nor a case (test_...)")
    return Waiver(ident, str(entry["reason"]), str(entry["owner"]), expires)
