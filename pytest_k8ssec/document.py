"""The report's JSON document, and its files: JSON, Markdown, HTML and SARIF, every rendering made from the JSON alone."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

from . import __version__
from .baseline import SCHEMA
from .behaviours import CLAIM_KINDS, kind_of
from .certification import Certification
from .controls import frameworks, mapping_of
from .recorder import Recorder
from .render import render_html, render_markdown
from .runconfig import RunConfig
from .sarif import sarif_log


def document(run: RunConfig, recorder: Recorder, certification: Certification) -> dict[str, Any]:
    """The run's report: its verdict, the cluster, each behaviour's claim and controls, and every case."""
    handle = recorder.cluster
    verdicts = certification.document()
    for behaviour, verdict in verdicts["behaviours"].items():  # titles: the JSON alone renders every format
        verdict["title"] = run.catalogue.get(behaviour, "")
    cases = recorder.documents()
    return {
        "schema": SCHEMA,
        "plugin": __version__,
        "certification": verdicts,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "profile": run.profile.name,
        "cluster": {
            "provider": handle.provider if handle else None,
            "version": handle.git_version if handle else None,
            "netpol_enforcer": handle.netpol_enforcer if handle else None,
            "details": {k: str(v) if isinstance(v, Path) else v for k, v in handle.details.items()} if handle else {},
        },
        "claims": claim_kinds(verdicts["behaviours"]),
        "controls": {"frameworks": frameworks(), "behaviours": {b: controls_of(b) for b in verdicts["behaviours"]}},
        "summary": _summary(cases),
        "notes": list(recorder.notes),
        "cases": cases,
    }


def claim_kinds(behaviours: Any) -> dict[str, Any]:
    """Each behaviour's kind of claim (capability, posture or the user's), and what the kinds mean."""
    return {"kinds": CLAIM_KINDS, "behaviours": {b: kind_of(b) for b in behaviours}}


def controls_of(behaviour: str) -> dict[str, Any]:
    mapping = mapping_of(behaviour)
    return ({"controls": [dataclasses.asdict(c) for c in mapping.controls]} if mapping.controls else {"none": mapping.none})


def _summary(cases: list[dict[str, Any]]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for case in cases:
        summary[case["verdict"]] = summary.get(case["verdict"], 0) + 1
    return summary


def write(data: dict[str, Any], directory: Path) -> None:
    """The JSON and its renderings in DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "k8s-sec-report.json").write_text(json.dumps(data, indent=2, default=str))
    write_renderings(data, directory)


def write_renderings(data: dict[str, Any], directory: Path) -> None:
    """Markdown, HTML and SARIF, each rendered from the JSON document alone."""
    (directory / "k8s-sec-report.md").write_text(render_markdown(data))
    (directory / "k8s-sec-report.html").write_text(render_html(data))
    (directory / "k8s-sec-report.sarif").write_text(json.dumps(sarif_log(data), indent=2))
