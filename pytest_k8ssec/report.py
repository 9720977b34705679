"""The certification report: the run's verdict, and per case its behaviour ID, mechanism, verdict and evidence.

Written as JSON and Markdown to --k8s-sec-report, as JUnit properties for --junitxml, and as
the verdict's lines in the terminal summary. A run that is not certified exits non-zero.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from .baseline import SCHEMA, baseline_lines, compare, load_report, regressions
from .behaviours import CLAIM_KINDS, kind_of
from .certification import NOT_CERTIFIED, NotApplicable, certify
from .errors import K8sSecError
from .controls import frameworks, mapping_of
from . import __version__
from .render import render_case_html, render_html, render_markdown
from .sarif import sarif_log

EVIDENCE_KEY = pytest.StashKey[dict]()
UNMARKED = ""  # the behaviour of a case without a behaviour marker


def verdict_of(report: pytest.TestReport, not_applicable: bool = False) -> str | None:
    """The case's verdict from the phase that decides it; None while undecided."""
    skip = "n/a" if not_applicable else "skip"
    if report.when == "call":
        return "pass" if report.passed else (skip if report.skipped else "fail")
    if report.when == "setup" and not report.passed:
        return skip if report.skipped else "error"
    if report.when == "teardown" and report.failed:
        return "error"
    return None


class ReportPlugin:
    """Collects one record per case and writes the report at the end of the session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        marker = item.get_closest_marker("behaviour")
        behaviour = marker.args[0] if marker else UNMARKED  # reported, never counted in the verdict
        verdict = verdict_of(report, bool(call.excinfo and call.excinfo.errisinstance(NotApplicable)))
        if verdict is None:
            return
        evidence = item.stash.get(EVIDENCE_KEY, {})
        path, line, _ = item.location
        record = {
            "case": item.nodeid.split("::", 1)[-1],
            "file": path if not path.startswith("..") else str(item.path),  # within the rootdir, or absolute
            "line": (line or 0) + 1,
            "behaviour": behaviour,
            "title": self.session.catalogue.get(behaviour, ""),
            "mechanism": evidence.get("mechanism", ""),
            "verdict": verdict,
            "seconds": round(report.duration, 2),  # of the deciding phase (the call, or a failed setup)
            "evidence": {k: v for k, v in evidence.items() if k != "mechanism"},
        }
        if verdict in ("fail", "error"):
            record["failure"] = str(report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") else report.longrepr)
        if verdict in ("skip", "n/a") and isinstance(report.longrepr, tuple):
            record["reason"] = report.longrepr[2].removeprefix("Skipped: ")
        self.session.results = [r for r in self.session.results if r["case"] != record["case"]] + [record]
        if getattr(item.config.option, "htmlpath", None):  # pytest-html writes a report
            _attach_to_pytest_html(report, record)
        if _junit_family(item.config) == "xunit1":  # xunit2's schema has no properties in a testcase
            report.user_properties += [("behaviour", behaviour), ("mechanism", record["mechanism"]), ("verdict", verdict)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The cluster used, and one line per note (leftovers removed, objects that would not go)."""
        handle = self.session.handle
        if handle:
            why = handle.details.get("chosen because")
            terminalreporter.write_line(f"k8s-sec: cluster: {handle.provider}" + (f" ({why})" if why else "")
                                        + f", Kubernetes {handle.git_version}, NetworkPolicy: {handle.netpol_enforcer or 'unknown'}")
        for note in self.session.notes:
            terminalreporter.write_line(f"k8s-sec: {note}")
        certification = self.session.certification
        if certification:
            for line in certification.lines():
                terminalreporter.write_line(f"k8s-sec: {line}", bold=True, red=certification.verdict == NOT_CERTIFIED)
        if self.session.comparison:
            for line in baseline_lines(self.session.comparison):
                terminalreporter.write_line(f"k8s-sec: {line}", bold=True, red=line.startswith("  REGRESSED"))

    @pytest.hookimpl(tryfirst=True)  # before --junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Judge the run; a run that is not certified exits non-zero even when no case failed."""
        catalogue = list(self.session.catalogue)
        required = sorted(self.session.selection or self.session.required, key=catalogue.index)
        settings = self.session.settings
        certification = certify(self.session.results, required, self.session.profile.not_applicable,
                                settings.accept_partial, selected=self.session.selection is not None,
                                waivers=self.session.waivers, today=self.session.today,
                                strict_waivers=settings.strict_waivers)
        self.session.certification = certification
        if certification.verdict == NOT_CERTIFIED and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        failed = [r for r in self.session.results if r["verdict"] in ("fail", "error")]
        waived = {b.behaviour for b in certification.waived}
        if (certification.verdict != NOT_CERTIFIED and session.exitstatus == pytest.ExitCode.TESTS_FAILED and failed
                and session.testsfailed == len(failed) and all(r["behaviour"] in waived for r in failed)):
            session.exitstatus = pytest.ExitCode.OK  # every failure is waived: the run is certified
        data = self.document()
        if self.session.baseline is not None:
            data["since_baseline"] = self.session.comparison = compare(self.session.baseline, data)
            if regressions(self.session.comparison):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.session.junit_property:
            self.session.junit_property("k8s-sec.verdict", certification.verdict)
            for b in certification.behaviours:
                mapping, claim = mapping_of(b.behaviour), data["claims"]["behaviours"][b.behaviour]
                self.session.junit_property(f"k8s-sec.{b.behaviour}", f"{b.status}; {claim} claim; "
                                            + (f"controls: {mapping}" if mapping.controls else str(mapping)))
        directory = self.session.settings.report_dir
        if directory is None or not self.session.results:
            return
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "k8s-sec-report.json").write_text(json.dumps(data, indent=2, default=str))
        write_renderings(data, directory)

    def document(self) -> dict[str, Any]:
        handle = self.session.handle
        certification = self.session.certification.document()
        for behaviour, verdict in certification["behaviours"].items():  # titles: the JSON alone renders every format
            verdict["title"] = self.session.catalogue.get(behaviour, "")
        return {
            "schema": SCHEMA,
            "plugin": __version__,
            "certification": certification,
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "profile": self.session.profile.name,
            "cluster": {
                "provider": handle.provider if handle else None,
                "version": handle.git_version if handle else None,
                "netpol_enforcer": handle.netpol_enforcer if handle else None,
                "details": {k: str(v) if isinstance(v, Path) else v for k, v in handle.details.items()} if handle else {},
            },
            "claims": _claims(certification["behaviours"]),
            "controls": {"frameworks": frameworks(),
                         "behaviours": {b: _controls(b) for b in certification["behaviours"]}},
            "summary": _summary(self.session.results),
            "notes": self.session.notes,
            "cases": self.session.results,
        }


def _attach_to_pytest_html(report: pytest.TestReport, record: dict[str, Any]) -> None:
    """The case's grids and matrix as an extra of its row in pytest-html's report."""
    fragment = render_case_html(record)
    if fragment:
        from pytest_html import extras  # only when pytest-html is installed and active
        report.extras = [*getattr(report, "extras", []), extras.html(fragment)]


def _junit_family(config: pytest.Config) -> str | None:
    return config.getini("junit_family") if config.pluginmanager.has_plugin("junitxml") else None


def _claims(behaviours: Any) -> dict[str, Any]:
    """Each behaviour's kind of claim (capability or posture), and what the kinds mean."""
    return {"kinds": CLAIM_KINDS, "behaviours": {b: kind_of(b) for b in behaviours}}


def _controls(behaviour: str) -> dict[str, Any]:
    mapping = mapping_of(behaviour)
    return ({"controls": [dataclasses.asdict(c) for c in mapping.controls]} if mapping.controls else {"none": mapping.none})


def _summary(results: list[dict[str, Any]]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for record in results:
        summary[record["verdict"]] = summary.get(record["verdict"], 0) + 1
    return summary


def write_renderings(data: dict[str, Any], directory: Path) -> None:
    """Markdown, HTML and SARIF, each rendered from the JSON document alone."""
    (directory / "k8s-sec-report.md").write_text(render_markdown(data))
    (directory / "k8s-sec-report.html").write_text(render_html(data))
    (directory / "k8s-sec-report.sarif").write_text(json.dumps(sarif_log(data), indent=2))


def main(argv: list[str] | None = None) -> int:
    """`render REPORT.json`: the Markdown, HTML and SARIF again, beside it. `merge DIR... [--out DIR]`: one fleet
    report (JSON, Markdown, HTML) from the report directories of separate runs, each named for its cluster."""
    parser = argparse.ArgumentParser(prog="python -m pytest_k8ssec.report", description=main.__doc__)
    parser.add_argument("command", choices=["render", "merge"])
    parser.add_argument("paths", type=Path, nargs="+", help="render: a k8s-sec-report.json; merge: report directories")
    parser.add_argument("--out", type=Path, default=Path("k8s-sec-fleet"), help="merge: where the fleet report goes")
    args = parser.parse_args(argv)
    if args.command == "merge":
        from . import fleet

        try:
            document = fleet.merge(args.paths)
        except K8sSecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        fleet.write(document, args.out)
        print("\n".join(fleet.summary(document)))
        return 0 if document["verdict"] == "certified" else 1
    try:
        data = load_report(args.paths[0])
    except K8sSecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_renderings(data, args.paths[0].parent)
    print(f"wrote k8s-sec-report.md, .html and .sarif in {args.paths[0].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
