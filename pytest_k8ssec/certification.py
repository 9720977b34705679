"""The certification verdict: what a run's cases add up to, behaviour by behaviour.

A green pytest run is not yet a certification. A behaviour the profile requires is certified
only when every one of its cases passed; a case that was skipped (no consent for a
cluster-scoped change, no audit log, no API) leaves the behaviour *not observed*, which is never
read as a pass. A case whose claim cannot apply to this cluster (cross-node traffic on one node,
a behaviour the profile declares not applicable) raises NotApplicable and counts neither way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

CERTIFIED, PARTIAL, NOT_CERTIFIED = "certified", "partial", "not certified"
PASS, FAIL, NOT_OBSERVED, NOT_APPLICABLE = "pass", "fail", "not observed", "not applicable"


class NotApplicable(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """A case whose claim does not apply to this cluster; pytest shows it as skipped."""


def not_applicable(reason: str) -> NoReturn:
    """Skip a case because its claim does not apply here (it then counts neither as pass nor as failure)."""
    raise NotApplicable(f"not applicable: {reason}")


@dataclass(frozen=True)
class BehaviourVerdict:
    """One behaviour's status and, unless it passed, why."""

    behaviour: str
    status: str
    why: str = ""


@dataclass(frozen=True)
class Certification:
    """The run's verdict in one word, and each required behaviour's status."""

    verdict: str
    behaviours: tuple[BehaviourVerdict, ...] = field(default_factory=tuple)
    partial_accepted: bool = False
    selected: bool = False  # --k8s-sec-behaviours narrowed the claim to these behaviours

    @property
    def not_observed(self) -> list[BehaviourVerdict]:
        return [b for b in self.behaviours if b.status == NOT_OBSERVED]

    @property
    def failed(self) -> list[BehaviourVerdict]:
        return [b for b in self.behaviours if b.status == FAIL]

    def lines(self) -> list[str]:
        """What the terminal and the report's first lines say: the verdict, then each behaviour short of a pass."""
        counts = {s: sum(1 for b in self.behaviours if b.status == s) for s in (PASS, FAIL, NOT_OBSERVED, NOT_APPLICABLE)}
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        if self.verdict == CERTIFIED:
            scope = (" for the selected behaviours only: " + ", ".join(b.behaviour for b in self.behaviours)
                     if self.selected else "")
            return [f"CERTIFIED: every required behaviour was observed ({tally}){scope}"]
        short = self.failed + self.not_observed
        head = (f"PARTIAL (accepted with --k8s-sec-accept-partial): {len(self.not_observed)} required behaviours not observed"
                if self.verdict == PARTIAL else
                f"NOT CERTIFIED: {', '.join(b.behaviour for b in short)} ({tally})")
        return [head, *(f"  {b.behaviour} {b.status}: {b.why}" for b in short)]

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "partial_accepted": self.partial_accepted, "selected_only": self.selected,
                "behaviours": {b.behaviour: {"status": b.status, "why": b.why} for b in self.behaviours}}


def certify(records: list[dict[str, Any]], required: list[str], declared_not_applicable: dict[str, str],
            accept_partial: bool = False, selected: bool = False) -> Certification:
    """Judge each required behaviour from the case records (verdicts pass/fail/error/skip/n/a) of the run."""
    verdicts = []
    for behaviour in required:
        if behaviour in declared_not_applicable:
            verdicts.append(BehaviourVerdict(behaviour, NOT_APPLICABLE, f"the profile says: {declared_not_applicable[behaviour]}"))
            continue
        verdicts.append(_judge(behaviour, [r for r in records if r["behaviour"] == behaviour]))
    if any(v.status == FAIL for v in verdicts):
        verdict = NOT_CERTIFIED
    elif any(v.status == NOT_OBSERVED for v in verdicts):
        verdict = PARTIAL if accept_partial else NOT_CERTIFIED
    else:
        verdict = CERTIFIED
    return Certification(verdict, tuple(verdicts), accept_partial and verdict == PARTIAL, selected)


def _judge(behaviour: str, records: list[dict[str, Any]]) -> BehaviourVerdict:
    failed = [r["case"] for r in records if r["verdict"] in ("fail", "error")]
    if failed:
        return BehaviourVerdict(behaviour, FAIL, "failed: " + ", ".join(failed))
    skipped = [f"{r['case']} skipped: {r.get('reason', '')}" for r in records if r["verdict"] == "skip"]
    if skipped:
        return BehaviourVerdict(behaviour, NOT_OBSERVED, "; ".join(skipped))
    if not records:
        return BehaviourVerdict(behaviour, NOT_OBSERVED, "no case of it ran")
    if all(r["verdict"] == "n/a" for r in records):
        return BehaviourVerdict(behaviour, NOT_APPLICABLE, "; ".join(r.get("reason", "") for r in records))
    return BehaviourVerdict(behaviour, PASS)
