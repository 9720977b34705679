"""The report rendered for people from its JSON document, so a stored report renders the same later."""

from __future__ import annotations

import re
from typing import Any

import jinja2

from .baseline import CHANGED, FIXED, NEW, REGRESSED, REMOVED, baseline_lines
from .behaviours import BEHAVIOURS
from .controls import Control, Mapping


def scalar_evidence(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The evidence short enough for a line; matrices and tables are in the JSON whole."""
    return [(k, v) for k, v in record["evidence"].items() if not isinstance(v, (dict, list))]


def render_markdown(data: dict[str, Any]) -> str:
    cluster = data["cluster"]
    certification = data["certification"]
    short = _short_lines(certification)
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
        lines.append(f"| {r['behaviour'] or '(unmarked)'} | `{r['case']}` | {r['mechanism']} | **{r['verdict']}** | {detail} |")
    controls = data.get("controls")
    claims = _claims(data)
    if controls:
        lines += ["", "## Controls", "", "What each behaviour's verdict is evidence for (partial: it covers part of the control).",
                  *(["", "Claim: " + "; ".join(f"*{kind}*: {meaning}" for kind, meaning in claims["kinds"].items()) + "."]
                    if claims else []),
                  "", "| Behaviour | " + ("Claim | " if claims else "") + "Status | Controls |",
                  "|---|" + ("---|" if claims else "") + "---|---|"]
        for behaviour, entry in controls["behaviours"].items():
            claim = f" {claims['behaviours'].get(behaviour, '')} |" if claims else ""
            lines.append(f"| {behaviour} |{claim} {certification['behaviours'][behaviour]['status']} | {_mapping(entry)} |")
        lines += ["", "Sources: " + "; ".join(f"{k}: {v['document']}" for k, v in controls["frameworks"].items())]
    lines += _endpoint_tables(data["cases"])
    if data["notes"]:
        lines += ["", "## Notes", *[f"- {n}" for n in data["notes"]]]
    return "\n".join(lines) + "\n"


ENDPOINT_COLUMNS = ("endpoint", "from", "as", "expected", "observed", "verdict")


def _endpoint_tables(cases: list[dict[str, Any]]) -> list[str]:
    """The endpoints each NODE-1 case probed, one row per request, wrong ones first."""
    lines = []
    for r in sorted((r for r in cases if r["evidence"].get("endpoints")), key=lambda r: r["case"]):
        rows = sorted(r["evidence"]["endpoints"], key=lambda e: e.get("verdict") != "WRONG")
        lines += ["", f"## Endpoints: `{r['case']}` ({r['behaviour']})", "",
                  "| " + " | ".join(ENDPOINT_COLUMNS) + " |", "|" + "---|" * len(ENDPOINT_COLUMNS),
                  *("| " + " | ".join(str(e.get(c, "")).replace("|", "\\|") for c in ENDPOINT_COLUMNS) + " |" for e in rows)]
    return lines


def _since_baseline(comparison: dict[str, Any] | None) -> list[str]:
    """Every change since the baseline, regressions first, with the cells that moved."""
    if comparison is None:
        return []
    lines = ["## Changes since baseline", "", baseline_lines(comparison)[0].capitalize(), ""]
    for c in _changes(comparison):
        lines.append(f"- **{c['kind']}** {c['behaviour']} `{c['case']}`: {c['detail']}")
        lines += [f"  - {cell}" for cell in c["cells"]]
    lines += [f"- not compared: {why}" for why in comparison["not_compared"]]
    return [*lines, ""]


SYMBOLS = {"ALLOWED": ".", "BLOCKED": "X", "ERROR": "?"}
TABLES = {"table": "Reachability", "service_name_table": "Reachability by Service name"}


_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("pytest_k8ssec"), autoescape=True,
                                undefined=jinja2.StrictUndefined)


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page (inline CSS, no script, nothing fetched): the verdict, then grids."""
    certification = data["certification"]
    controls = data.get("controls") or {"behaviours": {}, "frameworks": {}}
    comparison = data.get("since_baseline")
    claims = _claims(data)
    return _TEMPLATES.get_template("report.html.j2").render(
        verdict=certification["verdict"],
        short=[line[2:] for line in _short_lines(certification)],
        cluster=data["cluster"], profile=data["profile"], generated=data["generated"], plugin=data.get("plugin", "unknown"),
        summary=", ".join(f"{n} {v}" for v, n in sorted(data["summary"].items())),
        changes=None if comparison is None else {
            "head": baseline_lines(comparison)[0].capitalize(), "not_compared": comparison["not_compared"],
            "entries": _changes(comparison)},
        claims=claims.get("kinds", {}),
        behaviours=[*(_behaviour_view(b, v, data["cases"], controls["behaviours"].get(b), claims)
                      for b, v in certification["behaviours"].items()), *_unmarked_view(data["cases"], claims)],
        notes=data["notes"],
        sources="; ".join(f"{k}: {v['document']}" for k, v in controls["frameworks"].items()),
    )


def render_case_html(record: dict[str, Any]) -> str:
    """A case's grids and matrix as a styled fragment, for pytest-html's report; empty when it has none."""
    case = _case_view(record)
    if not case["tables"] and not case["matrix"] and not case["endpoints"]:
        return ""
    return _TEMPLATES.get_template("pytest_html_extra.html.j2").render(c=case)


def _changes(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The baseline's changes, regressions first."""
    order = (REGRESSED, FIXED, CHANGED, NEW, REMOVED)
    return sorted(comparison["changes"], key=lambda c: order.index(c["kind"]))


def _claims(data: dict[str, Any]) -> dict[str, Any]:
    """Each behaviour's kind of claim and what the kinds mean; empty for a report older than the distinction."""
    return data.get("claims") or {}


def _mapping(entry: dict[str, Any]) -> Mapping:
    """A behaviour's controls as the JSON document holds them."""
    return Mapping(tuple(Control(**c) for c in entry.get("controls", [])), entry.get("none", ""))


def _short_lines(certification: dict[str, Any]) -> list[str]:
    lines = ["- nothing observed: every required behaviour was not applicable"] if certification.get("nothing_observed") else []
    lines += [f"- {b}: {v['status']}: {v['why']}" for b, v in certification["behaviours"].items()
              if v["status"] in ("fail", "waived", "not observed", "not applicable")]
    return lines + [f"- {line}" for key in ("problems", "notes") for line in certification.get("waivers", {}).get(key, [])]


def _behaviour_view(behaviour: str, verdict: dict[str, Any], cases: list[dict[str, Any]], controls: dict | None,
                    claims: dict[str, Any]) -> dict[str, Any]:
    own = sorted((c for c in cases if c["behaviour"] == behaviour), key=lambda c: c["case"])
    return {"id": behaviour, "title": verdict.get("title") or BEHAVIOURS.get(behaviour, ""), "status": verdict["status"], "why": verdict["why"],
            "claim": claims.get("behaviours", {}).get(behaviour, ""),
            "controls": str(_mapping(controls)) if controls else "", "cases": [_case_view(c) for c in own]}


def _unmarked_view(cases: list[dict[str, Any]], claims: dict[str, Any]) -> list[dict[str, Any]]:
    """The cases without a behaviour ID, shown after the behaviours; they count in no verdict."""
    if not any(c["behaviour"] == "" for c in cases):
        return []
    view = _behaviour_view("", {"status": "not counted", "why": "tests without a behaviour ID"}, cases, None, claims)
    return [{**view, "id": "unmarked", "title": "tests without a behaviour ID: reported, not counted in the verdict"}]


def _case_view(record: dict[str, Any]) -> dict[str, Any]:
    evidence = record["evidence"]
    return {"case": record["case"], "anchor": re.sub(r"[^A-Za-z0-9_-]", "-", record["case"]), "verdict": record["verdict"],
            "mechanism": record["mechanism"], "facts": scalar_evidence(record),
            "failure": record.get("failure") or record.get("reason") or "",
            "tables": [_grid_view(title, evidence[key], evidence.get("policies", "")) for key, title in TABLES.items() if key in evidence],
            "matrix": evidence.get("matrix", []), "endpoints": evidence.get("endpoints", [])}


def _grid_view(title: str, table: dict[str, dict[str, str]], policies: str) -> dict[str, Any]:
    """Expected and observed side by side, per port; cells of the observed table that differ are marked."""
    def split(key: str) -> tuple[str, str, str]:
        source, rest = key.split(" -> ", 1)
        destination, port = rest.rsplit(" port ", 1)
        return source, destination, port

    cells = {side: {split(k): v for k, v in table[side].items()} for side in ("expected", "observed")}
    keys = list(cells["expected"]) + [k for k in cells["observed"] if k not in cells["expected"]]
    sources, destinations, ports = (list(dict.fromkeys(k[i] for k in keys)) for i in range(3))
    # pods in the rows' order (a pod is never probed from itself, so first appearances skew it), then Services
    destinations.sort(key=lambda d: sources.index(d) if d in sources else len(sources))

    def cell(side: str, key: tuple[str, str, str]) -> dict[str, str]:
        value = cells[side].get(key)
        differs = side == "observed" and value != cells["expected"].get(key)
        return {"symbol": SYMBOLS.get(value, ""), "cls": (value or "none").lower() + (" diff" if differs else ""),
                "title": f"{key[0]} -> {key[1]} port {key[2]}: {value or 'not probed'}"
                         + (f" (expected {cells['expected'].get(key) or 'not probed'})" if differs else "")}

    return {"title": title, "policies": policies, "destinations": destinations,
            "ports": [{"port": port, "sides": [{"name": side, "rows": [
                {"source": s, "cells": [cell(side, (s, d, port)) for d in destinations]} for s in sources]}
                for side in ("expected", "observed")]} for port in ports]}
