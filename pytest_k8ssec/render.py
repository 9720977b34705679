"""The report rendered for people from its JSON document, so a stored report renders the same later."""

from __future__ import annotations

from typing import Any

from .baseline import CHANGED, FIXED, NEW, REGRESSED, REMOVED, baseline_lines
from .controls import Control, Mapping


def scalar_evidence(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The evidence short enough for a line; matrices and tables are in the JSON whole."""
    return [(k, v) for k, v in record["evidence"].items() if not isinstance(v, (dict, list))]


def render_markdown(data: dict[str, Any]) -> str:
    cluster = data["cluster"]
    certification = data["certification"]
    short = [f"- {b}: {v['status']}: {v['why']}" for b, v in certification["behaviours"].items()
             if v["status"] in ("fail", "waived", "not observed", "not applicable")]
    short += [f"- {line}" for key in ("problems", "notes") for line in certification.get("waivers", {}).get(key, [])]
    lines = [
        "# Kubernetes security certification report",
        "",
        f"**Verdict: {certification['verdict'].upper()}**"
        + (" (a partial certification, accepted with --k8s-sec-accept-partial)" if certification["partial_accepted"] else "")
        + (" (for the selected behaviours only: " + ", ".join(certification["behaviours"]) + ")"
           if certification.get("selected_only") else ""),
        "",
        *([*short, ""] if short else []),
        f"- Cluster: {cluster['provider']} {cluster['version']} (NetworkPolicy: {cluster['netpol_enforcer'] or 'unknown'})",
        f"- Profile: {data['profile']}",
        f"- Generated: {data['generated']}",
        "- Summary: " + ", ".join(f"{n} {v}" for v, n in sorted(data["summary"].items())),
        "",
        *_since_baseline(data.get("since_baseline")),
        "| Behaviour | Case | Mechanism | Verdict | Evidence |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(data["cases"], key=lambda r: (r["behaviour"], r["case"])):
        detail = r.get("failure") or r.get("reason") or "; ".join(f"{k}: {v}" for k, v in scalar_evidence(r))
        detail = detail.replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| {r['behaviour']} | `{r['case']}` | {r['mechanism']} | **{r['verdict']}** | {detail} |")
    controls = data.get("controls")
    if controls:
        lines += ["", "## Controls", "", "What each behaviour's verdict is evidence for (partial: it covers part of the control).",
                  "", "| Behaviour | Status | Controls |", "|---|---|---|"]
        for behaviour, entry in controls["behaviours"].items():
            named = Mapping(tuple(Control(**c) for c in entry.get("controls", [])), entry.get("none", ""))
            lines.append(f"| {behaviour} | {certification['behaviours'][behaviour]['status']} | {named} |")
        lines += ["", "Sources: " + "; ".join(f"{k}: {v['document']}" for k, v in controls["frameworks"].items())]
    if data["notes"]:
        lines += ["", "## Notes", *[f"- {n}" for n in data["notes"]]]
    return "\n".join(lines) + "\n"


def _since_baseline(comparison: dict[str, Any] | None) -> list[str]:
    """Every change since the baseline, regressions first, with the cells that moved."""
    if comparison is None:
        return []
    lines = ["## Changes since baseline", "", baseline_lines(comparison)[0].capitalize(), ""]
    order = (REGRESSED, FIXED, CHANGED, NEW, REMOVED)
    for c in sorted(comparison["changes"], key=lambda c: order.index(c["kind"])):
        lines.append(f"- **{c['kind']}** {c['behaviour']} `{c['case']}`: {c['detail']}")
        lines += [f"  - {cell}" for cell in c["cells"]]
    lines += [f"- not compared: {why}" for why in comparison["not_compared"]]
    return [*lines, ""]
