"""What a run saw: one typed record per case, the cluster it used, and its notes.

The report hooks record the cases and the run's fixtures the cluster and the notes; the verdict
and every report format are made from what is recorded here, and nothing else writes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import pytest

from .handle import ClusterHandle

EVIDENCE_KEY = pytest.StashKey[dict]()  # a case's evidence, gathered by its fixtures (k8s_evidence)
UNMARKED = ""  # the behaviour of a case without a behaviour marker: reported, never counted in the verdict
VERDICTS = ("pass", "fail", "error", "skip", "n/a")


@dataclass(frozen=True)
class CaseRecord:
    """One case's outcome: its behaviour, the mechanism that answered, its verdict and the evidence."""

    case: str
    file: str
    line: int
    behaviour: str
    title: str
    mechanism: str
    verdict: str
    seconds: float  # of the deciding phase (the call, or a failed setup)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    failure: str | None = None  # a fail's or an error's message
    reason: str | None = None   # a skip's reason

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"a case's verdict is one of {', '.join(VERDICTS)}, not {self.verdict!r}")

    def as_dict(self) -> dict[str, Any]:
        """The record as the report's JSON holds it (no empty failure or reason)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class Recorder:
    """The run's records; a case recorded again (a failed teardown after its call) replaces its earlier record."""

    def __init__(self) -> None:
        self._cases: dict[str, CaseRecord] = {}
        self._notes: list[str] = []
        self._cluster: ClusterHandle | None = None

    def record(self, case: CaseRecord) -> None:
        self._cases.pop(case.case, None)
        self._cases[case.case] = case

    def note(self, text: str) -> None:
        """A line for the terminal and the report: leftovers removed, objects that would not go."""
        self._notes.append(text)

    def opened(self, cluster: ClusterHandle) -> None:
        """The cluster the run uses, as it was found (version, nodes, enforcer)."""
        self._cluster = cluster

    @property
    def cluster(self) -> ClusterHandle | None:
        return self._cluster

    @property
    def cases(self) -> tuple[CaseRecord, ...]:
        return tuple(self._cases.values())

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes)

    def documents(self) -> list[dict[str, Any]]:
        """Every case as the report's JSON and the certification read it."""
        return [c.as_dict() for c in self._cases.values()]


RECORDER = pytest.StashKey[Recorder]()
