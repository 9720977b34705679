"""The report's pytest hooks: a record per case as it ends, the verdict at the end of the session, its terminal lines.

They read the run's configuration, write only the recorder, and leave the document and its
files to `document`. A run that is not certified exits non-zero.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from .baseline import baseline_lines, compare, regressions
from .certification import NOT_CERTIFIED, Certification, NotApplicable, certify
from .controls import mapping_of
from .document import document, write
from .recorder import EVIDENCE_KEY, UNMARKED, CaseRecord, Recorder
from .render import render_case_html
from .runconfig import RunConfig

PLUGIN_NAME = "k8ssec-report"


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


def case_record(item: pytest.Item, report: pytest.TestReport, verdict: str, catalogue: dict[str, str]) -> CaseRecord:
    """The case's record from its item, the deciding phase's report and its evidence; its title from the catalogue."""
    marker = item.get_closest_marker("behaviour")
    behaviour = marker.args[0] if marker else UNMARKED
    evidence = item.stash.get(EVIDENCE_KEY, {})
    path, line, _ = item.location
    failure = reason = None
    if verdict in ("fail", "error"):
        failure = str(report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") else report.longrepr)
    if verdict in ("skip", "n/a") and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
    return CaseRecord(
        case=item.nodeid.split("::", 1)[-1],
        file=path if not path.startswith("..") else str(item.path),  # within the rootdir, or absolute
        line=(line or 0) + 1,
        behaviour=behaviour,
        title=catalogue.get(behaviour, ""),
        mechanism=evidence.get("mechanism", ""),
        verdict=verdict,
        seconds=round(report.duration, 2),
        evidence={k: v for k, v in evidence.items() if k != "mechanism"},
        failure=failure,
        reason=reason,
    )


class ReportHooks:
    """Records each case, judges the run at the end, and writes the report where --k8s-sec-report says."""

    def __init__(self, run: RunConfig, recorder: Recorder) -> None:
        self.run, self.recorder = run, recorder
        self.certification: Certification | None = None
        self.comparison: dict[str, Any] | None = None  # what changed since the baseline
        self.junit_property: Callable[[str, object], None] | None = None  # pytest's record_testsuite_property

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        verdict = verdict_of(report, bool(call.excinfo and call.excinfo.errisinstance(NotApplicable)))
        if verdict is None:
            return
        record = case_record(item, report, verdict, self.run.catalogue)
        self.recorder.record(record)
        if getattr(item.config.option, "htmlpath", None):  # pytest-html writes a report
            _attach_to_pytest_html(report, record)
        if _junit_family(item.config) == "xunit1":  # xunit2's schema has no properties in a testcase
            report.user_properties += [("behaviour", record.behaviour), ("mechanism", record.mechanism), ("verdict", verdict)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The cluster used, and one line per note (leftovers removed, objects that would not go)."""
        handle = self.recorder.cluster
        if handle:
            why = handle.details.get("chosen because")
            terminalreporter.write_line(f"k8s-sec: cluster: {handle.provider}" + (f" ({why})" if why else "")
                                        + f", Kubernetes {handle.git_version}, NetworkPolicy: {handle.netpol_enforcer or 'unknown'}")
        for note in self.recorder.notes:
            terminalreporter.write_line(f"k8s-sec: {note}")
        if self.certification:
            for line in self.certification.lines():
                terminalreporter.write_line(f"k8s-sec: {line}", bold=True, red=self.certification.verdict == NOT_CERTIFIED)
        if self.comparison:
            for line in baseline_lines(self.comparison):
                terminalreporter.write_line(f"k8s-sec: {line}", bold=True, red=line.startswith("  REGRESSED"))

    @pytest.hookimpl(tryfirst=True)  # before --junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Judge the run; a run that is not certified exits non-zero even when no case failed."""
        run, cases = self.run, self.recorder.documents()
        settings = run.settings
        certification = certify(cases, run.required, run.profile.not_applicable, settings.accept_partial,
                                selected=run.selection is not None, waivers=list(run.waivers), today=run.today,
                                strict_waivers=settings.strict_waivers)
        self.certification = certification
        if certification.verdict == NOT_CERTIFIED and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        failed = [c for c in cases if c["verdict"] in ("fail", "error")]
        waived = {b.behaviour for b in certification.waived}
        if (certification.verdict != NOT_CERTIFIED and session.exitstatus == pytest.ExitCode.TESTS_FAILED and failed
                and session.testsfailed == len(failed) and all(c["behaviour"] in waived for c in failed)):
            session.exitstatus = pytest.ExitCode.OK  # every failure is waived: the run is certified
        data = document(run, self.recorder, certification)
        if run.baseline is not None:
            data["since_baseline"] = self.comparison = compare(dict(run.baseline), data)
            if regressions(self.comparison):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.junit_property:
            self.junit_property("k8s-sec.verdict", certification.verdict)
            for b in certification.behaviours:
                mapping, claim = mapping_of(b.behaviour), data["claims"]["behaviours"][b.behaviour]
                self.junit_property(f"k8s-sec.{b.behaviour}", f"{b.status}; {claim} claim; "
                                    + (f"controls: {mapping}" if mapping.controls else str(mapping)))
        if settings.report_dir is not None and cases:
            write(data, settings.report_dir)


def _attach_to_pytest_html(report: pytest.TestReport, record: CaseRecord) -> None:
    """The case's grids and matrix as an extra of its row in pytest-html's report."""
    fragment = render_case_html(record.as_dict())
    if fragment:
        from pytest_html import extras  # only when pytest-html is installed and active
        report.extras = [*getattr(report, "extras", []), extras.html(fragment)]


def _junit_family(config: pytest.Config) -> str | None:
    return config.getini("junit_family") if config.pluginmanager.has_plugin("junitxml") else None
