"""The report as SARIF 2.1.0, for code-scanning dashboards: a rule per behaviour, a result per finding.

Built from the JSON report, so a stored report can be turned into SARIF later. A finding is a
failed case (level error), a waived failure (error, with an accepted external suppression
carrying the waiver) and a skipped case of a behaviour that was not observed (warning): a
dashboard with no alerts must never stand for a run that saw too little.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from . import __version__
from .behaviours import BEHAVIOURS
from .certification import NOT_OBSERVED, WAIVED
from .controls import mapping_of
from .render import scalar_evidence

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif_log(data: dict[str, Any]) -> dict[str, Any]:
    behaviours = dict(data["certification"]["behaviours"])
    if any(r["behaviour"] == "" and r["verdict"] in ("fail", "error") for r in data["cases"]):
        behaviours[""] = {"status": "not counted", "why": "", "title": "a test without a behaviour ID"}
    ids = list(behaviours)
    results = [_result(record, behaviours[record["behaviour"]], ids.index(record["behaviour"]))
               for record in data["cases"] if record["behaviour"] in behaviours and _is_finding(record, behaviours)]
    cluster = data["cluster"]
    claims = (data.get("claims") or {}).get("behaviours", {})  # a report older than the distinction has none
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pytest-k8ssec", "version": __version__,
                                "rules": [_rule(b, claims.get(b), behaviours[b].get("title") or BEHAVIOURS.get(b, "")) for b in ids]}},
            "invocations": [{"executionSuccessful": True}],
            "results": results,
            "properties": {"certification": data["certification"]["verdict"], "profile": data["profile"],
                           "cluster": f"{cluster['provider']} {cluster['version']}",
                           "networkPolicy": cluster["netpol_enforcer"] or "unknown"},
        }],
    }


def _is_finding(record: dict[str, Any], behaviours: dict[str, Any]) -> bool:
    status = behaviours[record["behaviour"]]["status"]
    return record["verdict"] in ("fail", "error") or (record["verdict"] == "skip" and status == NOT_OBSERVED)


def _rule(behaviour: str, claim: str | None, title: str) -> dict[str, Any]:
    """The behaviour, its kind of claim (capability or posture) as a property and a tag, and its controls."""
    mapping = mapping_of(behaviour)
    return {
        "id": behaviour or "unmarked",
        "shortDescription": {"text": f"{behaviour}: {title}"},
        "fullDescription": {"text": f"{title}." + (f" Claim: {claim}." if claim else "") + f" Controls: {mapping}"},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "kubernetes", *([claim] if claim else []),
                                *(f"{c.framework} {c.control.split(':')[0]}" for c in mapping.controls)],
                       **({"claim": claim} if claim else {}),
                       "controls": [str(c) for c in mapping.controls]},
    }


def _result(record: dict[str, Any], behaviour: dict[str, Any], index: int) -> dict[str, Any]:
    skipped = record["verdict"] == "skip"
    text = (f"{record['case']}: not observed: {record.get('reason', '')}" if skipped else
            f"{record['case']} {record['verdict']}ed: {record.get('failure', '')}")
    result: dict[str, Any] = {
        "ruleId": record["behaviour"] or "unmarked",
        "ruleIndex": index,
        "level": "warning" if skipped else "error",
        "message": {"text": "\n".join([text, *([f"Mechanism: {record['mechanism']}"] if record["mechanism"] else []),
                                          *(f"{k}: {v}" for k, v in scalar_evidence(record))])},
        "locations": [{
            "physicalLocation": {"artifactLocation": _artifact(record["file"]), "region": {"startLine": record["line"]}},
            "logicalLocations": [{"name": record["case"], "kind": "function"}],
        }],
        "partialFingerprints": {"k8sSecCase/v1": f"{record['behaviour']}:{record['case']}"},
    }
    waiver = behaviour.get("waived_cases", {}).get(record["case"])
    if behaviour["status"] == WAIVED and waiver:
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": waiver}]
    return result


def _artifact(path: str) -> dict[str, str]:
    """A file inside the run's rootdir relative to the scanned source root; any other by its absolute URI."""
    posix = PurePosixPath(path)
    return {"uri": posix.as_uri()} if posix.is_absolute() else {"uri": str(posix), "uriBaseId": "%SRCROOT%"}
