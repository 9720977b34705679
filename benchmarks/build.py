"""A cold build of the local cluster, and how often it said where it was.

    python benchmarks/build.py [--k8s-version v1.37.2]

Runs `python -m pytest_k8ssec.local build` with an empty project cache and an empty Go build
cache (both temporary, removed afterwards; the Go module cache is kept, so sources are not
downloaded again), stamps every line it prints, and prints the lines, the total time and the
longest silence between two lines. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from pytest_k8ssec.settings import DEFAULT_K8S_VERSION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="k8ssec-cold-build-") as tmp:
        env = {**os.environ, "K8SSEC_CACHE": os.path.join(tmp, "cache"), "GOCACHE": os.path.join(tmp, "gocache")}
        argv = [sys.executable, "-m", "pytest_k8ssec.local", "build", "--k8s-version", args.k8s_version]
        start = last = time.monotonic()
        longest = 0.0
        with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            for line in proc.stdout:
                now = time.monotonic()
                longest = max(longest, now - last)
                last = now
                print(f"{now - start:7.1f}s  {line.rstrip()}", flush=True)
        longest = max(longest, time.monotonic() - last)
        print(f"cold build: exit {proc.returncode}, {time.monotonic() - start:.0f}s, longest silence {longest:.1f}s")


if __name__ == "__main__":
    main()
