"""What changed since an earlier report (--k8s-sec-baseline): the regression check after an upgrade.

Cases are matched by ID, and inside a case the cells of its evidence: can-i matrices by
question, reachability tables by cell. A case that passed before and now fails, errors, is
skipped or is missing has REGRESSED, and the run fails; the reverse is FIXED. Evidence that
moved while the verdict held (a cell, the mechanism) is CHANGED. Behaviours one of the two runs
did not require are not compared, and the report says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .behaviours import BEHAVIOURS
from .errors import K8sSecError

SCHEMA = 1  # the report's "schema": bump when a field the diff reads changes meaning
REGRESSED, FIXED, CHANGED, NEW, REMOVED = "regressed", "fixed", "changed", "new", "removed"
CELL_EVIDENCE = ("matrix", "table", "service_name_table")
SHORT = ("fail", "error", "skip")  # case verdicts short of a pass (n/a is neither)


@dataclass(frozen=True)
class Change:
    kind: str
    behaviour: str
    case: str
    detail: str
    cells: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.behaviour} {self.case}: {self.detail}" + "".join(f"\n    {c}" for c in self.cells)


def load_report(path: Path) -> dict[str, Any]:
    """A JSON report of an earlier run (a baseline, or one to render again); anything else is one error line."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise K8sSecError(f"cannot read the report {path} ({exc.strerror}): pass the k8s-sec-report.json of an earlier run") from None
    except ValueError:
        raise K8sSecError(f"the report {path} is not JSON: pass the k8s-sec-report.json of an earlier run") from None
    if not isinstance(data, dict) or not {"cases", "certification"} <= data.keys():
        raise K8sSecError(f"{path} is not a k8s-sec report (no cases or certification): "
                          "pass the k8s-sec-report.json of an earlier run")
    if data.get("schema", 0) > SCHEMA:
        raise K8sSecError(f"the report {path} was written by a newer pytest-k8ssec (report schema {data['schema']}, "
                          f"this one reads up to {SCHEMA}): upgrade the plugin")
    return data


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The changes from `old` to `new` report documents, and what could not be compared."""
    required = set(old["certification"]["behaviours"]) & set(new["certification"]["behaviours"]) | {""}  # "": unmarked
    before = {r["case"]: r for r in old["cases"] if r["behaviour"] in required}
    after = {r["case"]: r for r in new["cases"] if r["behaviour"] in required}
    changes = [c for case in sorted(before.keys() | after.keys(), key=lambda c: (_behaviour(c, before, after), c))
               for c in _case_changes(before.get(case), after.get(case))]
    skipped = sorted(set(old["certification"]["behaviours"]) ^ set(new["certification"]["behaviours"]))
    not_compared = [f"{b}: required by one run only" for b in skipped]
    if old.get("schema", 0) < 1:
        not_compared.append("cells: the baseline's report keeps no matrices or tables (schema 0): verdicts and mechanisms only")
    versions = (old["cluster"].get("version"), new["cluster"].get("version"))
    return {
        "baseline": {"generated": old.get("generated"), "verdict": old["certification"]["verdict"], "version": versions[0]},
        "version_change": f"{versions[0]} -> {versions[1]}" if versions[0] != versions[1] else None,
        "changes": [{"kind": c.kind, "behaviour": c.behaviour, "case": c.case, "detail": c.detail, "cells": list(c.cells)}
                    for c in changes],
        "not_compared": not_compared,
    }


def baseline_lines(comparison: dict[str, Any]) -> list[str]:
    """The terminal's account: a tally, one line per regression, then what was not compared."""
    tally = {kind: sum(1 for c in comparison["changes"] if c["kind"] == kind) for kind in (REGRESSED, FIXED, CHANGED, NEW, REMOVED)}
    base = comparison["baseline"]
    head = (f"since the baseline ({base['generated']}, {base['verdict']}"
            + (f"; Kubernetes {comparison['version_change']}" if comparison["version_change"] else "") + "): "
            + (", ".join(f"{n} {kind}" for kind, n in tally.items() if n) or "no change"))
    return [head, *(f"  REGRESSED {c.behaviour} {c.case}: {c.detail}" for c in regressions(comparison)),
            *(f"  not compared: {why}" for why in comparison["not_compared"])]


def regressions(comparison: dict[str, Any]) -> list[Change]:
    return [Change(c["kind"], c["behaviour"], c["case"], c["detail"], tuple(c["cells"]))
            for c in comparison["changes"] if c["kind"] == REGRESSED]


def _behaviour(case: str, before: dict, after: dict) -> int:
    """The case's behaviour's place in the catalogue, so changes read in the order of BEHAVIOURS.md."""
    behaviour = (after.get(case) or before[case])["behaviour"]
    return list(BEHAVIOURS).index(behaviour) if behaviour in BEHAVIOURS else len(BEHAVIOURS)  # the user's own: last


def _case_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Change]:
    if new is None:
        kind = REGRESSED if old["verdict"] == "pass" else REMOVED
        return [Change(kind, old["behaviour"], old["case"], f"{old['verdict']} -> missing (the case did not run)")]
    if old is None:
        return [Change(NEW, new["behaviour"], new["case"], f"new case: {new['verdict']}")]
    cells = tuple(line for key in CELL_EVIDENCE for line in _cell_changes(key, old["evidence"].get(key), new["evidence"].get(key)))
    changes = []
    if old["verdict"] != new["verdict"]:
        kind = (REGRESSED if old["verdict"] == "pass" and new["verdict"] in SHORT else
                FIXED if new["verdict"] == "pass" and old["verdict"] in SHORT else CHANGED)
        why = new.get("failure") or new.get("reason") or ""
        changes.append(Change(kind, new["behaviour"], new["case"], f"{old['verdict']} -> {new['verdict']}"
                              + (f": {why.splitlines()[0]}" if why else ""), cells))
        cells = ()
    if old["mechanism"] != new["mechanism"]:
        changes.append(Change(CHANGED, new["behaviour"], new["case"], f"mechanism: {old['mechanism']!r} -> {new['mechanism']!r}"))
    if cells:
        changes.append(Change(CHANGED, new["behaviour"], new["case"], f"{len(cells)} evidence cells changed", cells))
    return changes


def _cell_changes(key: str, old: Any, new: Any) -> list[str]:
    """Cells of one piece of evidence that differ: a can-i answer, or a reachability outcome."""
    if old is None or new is None:
        return []
    if key == "matrix":
        before = {row["can-i"]: row["observed"] for row in old}
        after = {row["can-i"]: row["observed"] for row in new}
    else:
        before, after = old["observed"], new["observed"]
    return [f"{key}: {cell}: {before.get(cell, 'absent')} -> {after.get(cell, 'absent')}"
            for cell in sorted(before.keys() | after.keys()) if before.get(cell) != after.get(cell)]
