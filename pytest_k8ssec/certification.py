"""The certification verdict: what a run's cases add up to, behaviour by behaviour.

A green pytest run is not yet a certification. A behaviour the profile requires is certified
only when every one of its cases passed; a case that was skipped (no consent for a
cluster-scoped change, no audit log, no API) leaves the behaviour *not observed*, which is never
read as a pass. A case whose claim cannot apply to this cluster (cross-node traffic on one node,
a behaviour the profile declares not applicable) raises NotApplicable and counts neither way.
A failure a valid waiver covers is *waived*: it does not stop the certification, and every
report says so with the waiver's reason, owner and expiry. A run whose every required behaviour
was not applicable observed nothing, and is not certified.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, NoReturn, Sequence

import pytest

from .waivers import Waiver

CERTIFIED, PARTIAL, NOT_CERTIFIED = "certified", "partial", "not certified"
PASS, FAIL, NOT_OBSERVED, NOT_APPLICABLE, WAIVED = "pass", "fail", "not observed", "not applicable", "waived"


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
    waived_cases: tuple[tuple[str, str], ...] = ()  # (case, the waiver that covers its failure)


@dataclass(frozen=True)
class Certification:
    """The run's verdict in one word, and each required behaviour's status."""

    verdict: str
    behaviours: tuple[BehaviourVerdict, ...] = field(default_factory=tuple)
    partial_accepted: bool = False
    selected: bool = False  # --k8s-sec-behaviours narrowed the claim to these behaviours
    waiver_problems: tuple[str, ...] = ()  # expired waivers (and, strictly, waivers no longer needed): the run fails
    waiver_notes: tuple[str, ...] = ()     # waivers no longer needed, where that is only worth saying

    @property
    def not_observed(self) -> list[BehaviourVerdict]:
        return [b for b in self.behaviours if b.status == NOT_OBSERVED]

    @property
    def failed(self) -> list[BehaviourVerdict]:
        return [b for b in self.behaviours if b.status == FAIL]

    @property
    def waived(self) -> list[BehaviourVerdict]:
        return [b for b in self.behaviours if b.status == WAIVED]

    @property
    def nothing_observed(self) -> bool:
        """Every required behaviour was not applicable: the run is evidence of nothing, so it cannot certify."""
        return _nothing_observed(self.behaviours)

    def lines(self) -> list[str]:
        """What the terminal and the report's first lines say: the verdict, then each behaviour short of a pass."""
        statuses = (PASS, WAIVED, FAIL, NOT_OBSERVED, NOT_APPLICABLE)
        counts = {s: sum(1 for b in self.behaviours if b.status == s) for s in statuses}
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        waived = [f"  {b.behaviour} waived: {b.why}" for b in self.waived]
        notes = [f"  {note}" for note in self.waiver_notes]
        if self.verdict == CERTIFIED:
            scope = (" for the selected behaviours only: " + ", ".join(b.behaviour for b in self.behaviours)
                     if self.selected else "")
            return [f"CERTIFIED: every required behaviour was observed ({tally}){scope}", *waived, *notes]
        if not self.behaviours:
            return ["NOT CERTIFIED: no behaviour was required: mark your tests with IDs declared in a claims file "
                    "(--k8s-sec-claims), or run the built-in suite (--k8s-sec-suite=builtin)"]
        short = self.failed + self.not_observed
        named = [b.behaviour for b in short] + (["waivers"] if self.waiver_problems else [])
        if self.nothing_observed:
            short, named = list(self.behaviours), ["nothing observed", *named]
        head = (f"PARTIAL (accepted with --k8s-sec-accept-partial): {len(self.not_observed)} required behaviours not observed"
                if self.verdict == PARTIAL else
                f"NOT CERTIFIED: {', '.join(named)} ({tally})")
        return [head, *(f"  {b.behaviour} {b.status}: {b.why}" for b in short), *(f"  {p}" for p in self.waiver_problems),
                *waived, *notes]

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "partial_accepted": self.partial_accepted, "selected_only": self.selected,
                "nothing_observed": self.nothing_observed,
                "behaviours": {b.behaviour: {"status": b.status, "why": b.why, **({"waived_cases": dict(b.waived_cases)}
                                                                                if b.waived_cases else {})}
                               for b in self.behaviours},
                "waivers": {"problems": list(self.waiver_problems), "notes": list(self.waiver_notes)}}


def certify(records: list[dict[str, Any]], required: list[str], declared_not_applicable: dict[str, str],
            accept_partial: bool = False, selected: bool = False, waivers: Sequence[Waiver] = (),
            today: datetime.date | None = None, strict_waivers: bool = False) -> Certification:
    """Judge each required behaviour from the case records (verdicts pass/fail/error/skip/n/a) of the run.

    A failure every one of whose failed cases a valid waiver covers is WAIVED; an expired waiver
    fails the run, and so, with `strict_waivers`, does a waiver whose cases all pass now.
    """
    today = today or datetime.date.today()
    valid = [w for w in waivers if not w.expired(today)]
    verdicts = []
    for behaviour in required:
        if behaviour in declared_not_applicable:
            verdicts.append(BehaviourVerdict(behaviour, NOT_APPLICABLE, f"the profile says: {declared_not_applicable[behaviour]}"))
            continue
        verdicts.append(_waive(_judge(behaviour, [r for r in records if r["behaviour"] == behaviour]), records, valid))
    problems = [f"waiver for {w.id} expired on {w.expires.isoformat()} (owner {w.owner}): fix it, or renew it"
                for w in waivers if w.expired(today)]
    stale = [f"waiver for {w.id} is no longer needed: its cases pass ({w.owner}); remove it" for w in valid
             if _passing(w, records)]
    if strict_waivers:
        problems += stale
    if any(v.status == FAIL for v in verdicts) or problems or _nothing_observed(verdicts):
        verdict = NOT_CERTIFIED
    elif any(v.status == NOT_OBSERVED for v in verdicts):
        verdict = PARTIAL if accept_partial else NOT_CERTIFIED
    else:
        verdict = CERTIFIED
    return Certification(verdict, tuple(verdicts), accept_partial and verdict == PARTIAL, selected, tuple(problems),
                         () if strict_waivers else tuple(stale))


def _nothing_observed(verdicts: Sequence[BehaviourVerdict]) -> bool:
    return all(v.status == NOT_APPLICABLE for v in verdicts)


def _waive(verdict: BehaviourVerdict, records: list[dict[str, Any]], waivers: list[Waiver]) -> BehaviourVerdict:
    """A failed behaviour becomes WAIVED when a valid waiver covers each of its failed cases."""
    if verdict.status != FAIL:
        return verdict
    failed = [r["case"] for r in records if r["behaviour"] == verdict.behaviour and r["verdict"] in ("fail", "error")]
    cover = {case: next((w for w in waivers if w.covers(verdict.behaviour, case)), None) for case in failed}
    if None in cover.values():
        return verdict
    return BehaviourVerdict(verdict.behaviour, WAIVED, "; ".join(f"{case} failed, waived: {w}" for case, w in cover.items()),
                            tuple((case, str(w)) for case, w in cover.items()))


def _passing(waiver: Waiver, records: list[dict[str, Any]]) -> bool:
    """Whether every case the waiver covers ran and passed."""
    covered = [r for r in records if waiver.covers(r["behaviour"], r["case"])]
    return bool(covered) and all(r["verdict"] == "pass" for r in covered)


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
