"""Fleets: one run per cluster, at most N at once, and one merged report of them all.

    python -m pytest_k8ssec.fleet --context prod-eu --context prod-us [--jobs 2] [--out DIR] [-- PYTEST_ARGS]
    python -m pytest_k8ssec.fleet --kubeconfig a.yaml --kubeconfig b.yaml ...
    python -m pytest_k8ssec.report merge DIR... [--out DIR]   (reports of separate CI jobs)

Each cluster's run is an ordinary `pytest --k8s-sec --k8s-sec-cluster=existing` in its own
process, with its own report directory (`DIR/<cluster>/`, and `--k8s-sec-baseline` there when a
`k8s-sec-report.json` of an earlier fleet run is found); the merged report is built from those
report files alone, so merging the same directories later gives the same document.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .baseline import load_report
from .certification import CERTIFIED
from .errors import K8sSecError

FLEET_SCHEMA = 1
REPORT = "k8s-sec-report.json"


@dataclass(frozen=True)
class Member:
    """One cluster of the fleet: its name in the report, and how pytest reaches it."""

    name: str
    args: tuple[str, ...]


def members(contexts: list[str], kubeconfigs: list[str], kubeconfig: str | None) -> list[Member]:
    found = [Member(_slug(c), ("--context", c) + (("--kubeconfig", kubeconfig) if kubeconfig else ())) for c in contexts]
    found += [Member(_slug(Path(k).stem), ("--kubeconfig", k)) for k in kubeconfigs]
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise K8sSecError(f"two clusters of the fleet share a name ({', '.join(names)}): give distinct contexts or files")
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "cluster"


def run_member(member: Member, out: Path, pytest_args: list[str]) -> float:
    """One cluster's run in its own process, its output kept in `pytest.log` beside its report; returns its seconds."""
    directory = out / member.name
    directory.mkdir(parents=True, exist_ok=True)
    previous = directory / REPORT
    baseline = ["--k8s-sec-baseline", str(previous.rename(directory / "baseline.json"))] if previous.exists() else []
    command = [sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=existing", *member.args,
               f"--k8s-sec-report={directory}", "-p", "no:cacheprovider", "-q", *baseline, *pytest_args]
    started = datetime.datetime.now(datetime.timezone.utc)
    done = subprocess.run(command, capture_output=True, text=True, cwd=directory)
    (directory / "pytest.log").write_text(done.stdout + done.stderr)
    return round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1)


def merge(directories: list[Path]) -> dict[str, Any]:
    """One document from per-cluster report directories (each named for its cluster): a row per cluster, worst
    first. A run that wrote no report is a row saying why, from its `pytest.log`."""
    rows = []
    for directory in directories:
        name = directory.name
        path = directory / REPORT
        if not path.exists():
            rows.append({"cluster": name, "verdict": "error", "provider": None, "version": None, "enforcer": None,
                         "short": [_why(directory)], "report": None})
            continue
        data = load_report(path)
        certification = data["certification"]
        rows.append({
            "cluster": name, "verdict": certification["verdict"], "provider": data["cluster"]["provider"],
            "version": data["cluster"]["version"], "enforcer": data["cluster"]["netpol_enforcer"],
            "short": [f"{b}: {v['status']}" for b, v in certification["behaviours"].items()
                      if v["status"] not in ("pass", "not applicable")],
            "report": f"{name}/{REPORT}",
        })
    rows.sort(key=lambda r: (r["verdict"] == CERTIFIED, r["cluster"]))
    return {"schema": FLEET_SCHEMA, "verdict": CERTIFIED if rows and all(r["verdict"] == CERTIFIED for r in rows)
            else "not certified", "clusters": rows}


def _why(directory: Path) -> str:
    log = directory / "pytest.log"
    lines = [line for line in log.read_text().splitlines() if "k8s-sec:" in line] if log.exists() else []
    return lines[-1].split("k8s-sec: ", 1)[-1] if lines else f"no {REPORT} in {directory}"


_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("pytest_k8ssec", "templates"), autoescape=True)


def write(document: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "k8s-sec-fleet.json").write_text(json.dumps(document, indent=2))
    (out / "k8s-sec-fleet.html").write_text(_TEMPLATES.get_template("fleet.html.j2").render(**document))
    lines = [f"# Fleet: {document['verdict'].upper()}", "", "| Cluster | Verdict | Provider | Version | NetworkPolicy | Short of a pass |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['cluster']} | **{r['verdict']}** | {r['provider']} | {r['version']} | {r['enforcer']} | "
              f"{'; '.join(r['short']) or '-'} |" for r in document["clusters"]]
    (out / "k8s-sec-fleet.md").write_text("\n".join(lines) + "\n")


def summary(document: dict[str, Any]) -> list[str]:
    return [f"fleet: {document['verdict'].upper()}",
            *(f"  {r['cluster']}: {r['verdict']}" + (f" ({'; '.join(r['short'])})" if r["short"] else "")
              for r in document["clusters"])]


def main(argv: list[str] | None = None) -> int:
    """Run the suite on every cluster of a fleet, at most --jobs at once, and write one merged report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m pytest_k8ssec.fleet", description=main.__doc__)
    parser.add_argument("--context", action="append", default=[], help="a kubeconfig context (repeat)")
    parser.add_argument("--kubeconfig", action="append", default=[],
                        help="a kubeconfig file per cluster (repeat); with --context, the file the contexts are in")
    parser.add_argument("--jobs", type=int, default=2, help="clusters run at once (default 2)")
    parser.add_argument("--out", type=Path, default=Path("k8s-sec-fleet"), help="where reports go (default k8s-sec-fleet)")
    args = parser.parse_args(argv)
    try:
        if args.context and len(args.kubeconfig) > 1:
            raise K8sSecError("with --context, give at most one --kubeconfig (the file the contexts are in)")
        found = members(args.context, [] if args.context else args.kubeconfig,
                        args.kubeconfig[0] if args.context and args.kubeconfig else None)
        if not found:
            raise K8sSecError("no cluster given: pass --context NAME or --kubeconfig FILE, once per cluster")
        if args.jobs < 1:
            raise K8sSecError("--jobs must be 1 or more")
    except K8sSecError as exc:
        print(f"k8s-sec fleet: {exc}", file=sys.stderr)
        return 3
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        seconds = dict(zip((m.name for m in found), pool.map(lambda m: run_member(m, args.out, pytest_args), found)))
    document = merge([args.out / m.name for m in found])
    write(document, args.out)
    for line in summary(document):
        print(line)
    print("seconds: " + ", ".join(f"{name} {s}" for name, s in seconds.items()))
    print(f"wrote k8s-sec-fleet.json, .md and .html in {args.out}")
    return 0 if document["verdict"] == CERTIFIED else 1


if __name__ == "__main__":
    sys.exit(main())
