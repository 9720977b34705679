"""The run's configuration: what the options, profile, claims file, waivers and baseline say, read once and frozen.

The plugin builds it before collection; fixtures, collection and the report hooks only read it.
What the run sees as it goes is the recorder's (`recorder.Recorder`).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from typing import Any, Mapping

import pytest

from .behaviours import BEHAVIOURS
from .claims import Claims, catalogue
from .profile import Profile
from .settings import Settings
from .waivers import Waiver


@dataclass(frozen=True)
class RunConfig:
    """Everything a k8s-sec run is asked to check, and against what."""

    settings: Settings
    profile: Profile
    selection: frozenset[str] | None = None   # --k8s-sec-behaviours; None: every behaviour of the catalogue
    claims: Claims | None = None              # the user's claims file (--k8s-sec-claims)
    builtin: bool = True                      # the built-in suite runs, and its behaviours are required
    waivers: tuple[Waiver, ...] = ()
    today: datetime.date | None = None        # the day waivers are judged on
    baseline: Mapping[str, Any] | None = None  # an earlier run's report (--k8s-sec-baseline)

    @functools.cached_property
    def catalogue(self) -> dict[str, str]:
        """Every behaviour ID of this run with its title: the built-in ones, then the user's own."""
        return catalogue(self.claims)

    @property
    def required(self) -> list[str]:
        """What the verdict needs: the selection, or else the built-in behaviours when that suite runs and the user's."""
        order = list(self.catalogue)
        if self.selection:
            return sorted(self.selection, key=order.index)
        own = list(self.claims.behaviours) if self.claims else []
        return [*(BEHAVIOURS if self.builtin else []), *own]


RUN_CONFIG = pytest.StashKey[RunConfig]()
