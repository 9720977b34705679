"""kind + Calico figures, from the offline kit: kit build, cluster create, Calico ready, the suite.

    python benchmarks/kind.py            # kit cached (built if missing), then one suite run on kind
    python benchmarks/kind.py --cold     # the kit's stages rebuilt into an empty kit directory first

Everything runs through `kit/with-kit.sh` (a private dockerd and the kit's registry, removed
afterwards), as CI runs it. --cold builds into an empty kit directory with an empty Go build
cache (the Go module cache stays warm: the proxy is not what is measured). The kind provider
records how long `kind create` and Calico took in the report. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent / "kit"
TIMING = re.compile(r"^timing: kind (\w+) (\d+)s$", re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="build the kit into an empty directory first")
    args = parser.parse_args()
    env = dict(os.environ, K8SSEC_PHASE="suite")
    with tempfile.TemporaryDirectory(prefix="k8ssec-kind-bench-") as tmp:
        if args.cold:
            env.update(KIT=f"{tmp}/kit", GOCACHE=f"{tmp}/gocache")
        report = Path(tmp, "report")
        argv = ["bash", str(KIT / "with-kit.sh"), "sh", "-c",
                f'cd {tmp} && exec {sys.executable} -m pytest --k8s-sec $K8SSEC_KIND_ARGS -p no:cacheprovider -q '
                f'--k8s-sec-report={report}']
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        timings = dict(TIMING.findall(proc.stdout))
        print(f"kit build ({'cold' if args.cold else 'cached'}): {timings.get('kit', '?')}s")
        if not (report / "k8s-sec-report.json").exists():
            print(proc.stdout[-3000:] + proc.stderr[-2000:])
            return 1
        data = json.loads((report / "k8s-sec-report.json").read_text())
        details = data["cluster"]["details"]
        create, calico = details.get("create seconds", 0), details.get("calico ready seconds", 0)
        total = int(timings.get("suite", 0))
        print(f"cluster create (kind create, a control plane and a worker): {create}s")
        print(f"Calico ready: {calico}s   create + Calico: {create + calico:.1f}s")
        print(f"suite wall time, create and teardown included: {total}s; the cases alone: {total - create - calico:.0f}s")
        print(f"result: exit {proc.returncode}, {data['summary']}, {data['certification']['verdict']}")
        for case in data["cases"]:
            if case["verdict"] in ("fail", "error"):
                print(f"{case['verdict']}: {case['case']}: {case.get('failure', '')[:3000]}")
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
