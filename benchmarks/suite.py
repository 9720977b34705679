"""Whole-suite figures on a warm local cluster; with --runs N, a soak test.

    python benchmarks/suite.py              # one run: wall time, slowest ten, probes per second
    python benchmarks/suite.py --runs 20    # soak: every run's time and result, leftovers after each

Each run is `pytest --k8s-sec --k8s-sec-cluster=local` in a subprocess, as a user would type it.
After each run the script lists every object on the cluster that still carries a run label.
The local cluster is started if it is down and left as it was found. Figures are printed,
never asserted; the exit status is 1 if any run failed or left something behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_k8ssec.kube import api_client
from pytest_k8ssec.local.cluster import LocalCluster, default_run_dir
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION, cache_dir
from pytest_k8ssec.run import labelled


def run_suite(workdir: Path, extra: list[str]) -> tuple[float, int, Path]:
    """One run of the suite; its wall time, exit status and the directory of its reports."""
    out = workdir / f"run-{time.monotonic_ns()}"
    out.mkdir()
    argv = [sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=local", "-p", "no:cacheprovider", "-q",
            f"--k8s-sec-report={out}", f"--junitxml={out / 'junit.xml'}", *extra]
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    (out / "output.txt").write_text(proc.stdout + proc.stderr)
    return seconds, proc.returncode, out


def case_times(junit: Path) -> list[tuple[float, str]]:
    """(seconds, case) per test case, slowest first; JUnit times include setup and teardown."""
    cases = ET.parse(junit).getroot().iter("testcase")
    return sorted(((float(c.get("time", 0)), f"{c.get('classname')}::{c.get('name')}") for c in cases), reverse=True)


def matrix_evidence(report: Path) -> list[tuple[str, dict]]:
    """(case, evidence) of the reachability cases, from the report."""
    cases = json.loads(report.read_text())["cases"]
    return [(c["case"], c["evidence"]) for c in cases if "probes" in c.get("evidence", {})]


def summarize(seconds: float, status: int, out: Path) -> None:
    times = case_times(out / "junit.xml")
    netpol = sum(t for t, name in times if "test_netpol" in name)
    matrices = matrix_evidence(out / "k8s-sec-report.json")
    probes = max((e["probes"] for _, e in matrices), default=0)  # the counter is cumulative over the module
    matrix_seconds = sum(e["matrix_seconds"] for _, e in matrices)
    summary = json.loads((out / "k8s-sec-report.json").read_text())["summary"]
    print(f"wall time: {seconds:.1f}s  exit {status}  cases: {summary}")
    print(f"NetworkPolicy module: {netpol:.1f}s; {probes} probes in {matrix_seconds:.1f}s of matrices "
          f"({probes / matrix_seconds if matrix_seconds else 0:.0f} probes/s)")
    for case, e in matrices:  # each evaluation probes every cell of the matrix once
        print(f"  {case}: {e['cells']} cells, {e['attempts']} evaluation(s) in {e['matrix_seconds']:.2f}s "
              f"({e['matrix_seconds'] / max(e['attempts'], 1):.2f}s each)")
    print("slowest ten (JUnit times: setup and teardown included; the session's teardown lands on the last case):")
    for t, name in times[:10]:
        print(f"  {t:6.1f}s  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="runs back to back (soak)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cluster = LocalCluster(default_run_dir(), cache_dir(), DEFAULT_K8S_VERSION)
    started_here = not cluster.is_up()
    if started_here:
        t0 = time.monotonic()
        cluster.up(load_profile())
        print(f"cluster started in {time.monotonic() - t0:.1f}s")
    api = api_client(str(cluster.handle().kubeconfig))
    bad = 0
    tmp = Path(tempfile.mkdtemp(prefix="k8ssec-bench-"))  # kept when a run fails, for its output
    walls = []
    try:
        for i in range(1, args.runs + 1):
            seconds, status, out = run_suite(tmp, args.pytest_args)
            left = labelled(api, terminating=False)
            walls.append(seconds)
            bad += status != 0 or bool(left)
            print(f"run {i}/{args.runs}: {seconds:.1f}s exit {status}; leftovers: {', '.join(left) or 'none'}")
            if status != 0:
                print((out / "output.txt").read_text()[-3000:])
                print(f"output, JUnit and report of this run kept in {out}")
            if args.runs == 1 or i == args.runs:
                summarize(seconds, status, out)
        peaks = cluster.peak_memory_mib()
        print(f"cluster peak rss since start: {sum(peaks.values()):.0f} MiB ("
              + ", ".join(f"{name} {mib:.0f}" for name, mib in sorted(peaks.items(), key=lambda kv: -kv[1])) + ")")
        if args.runs > 1:
            print(f"soak: {args.runs} runs, {bad} failed or left objects; wall min {min(walls):.1f}s, "
                  f"median {sorted(walls)[len(walls) // 2]:.1f}s, max {max(walls):.1f}s")
    finally:
        if not bad:
            shutil.rmtree(tmp, ignore_errors=True)
        if started_here:
            cluster.down(quiet=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
