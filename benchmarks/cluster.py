"""Local cluster figures: build, start to ready, memory of each component, stop.

    python benchmarks/cluster.py [--cold] [--k8s-version v1.37.2]

--cold builds into an empty cache directory (minutes; the Go module cache stays warm). Without
it the build step only checks the cache. A cluster that is already up is stopped first, and
the cluster is left stopped. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from pytest_k8ssec.local.cluster import LocalCluster, default_run_dir
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION, cache_dir


def print_memory(cluster: LocalCluster) -> None:
    peaks = cluster.peak_memory_mib()
    for name, mib in peaks.items():
        print(f"  peak rss {name:24} {mib:7.1f} MiB")
    print(f"peak rss, all components: {sum(peaks.values()):6.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="build into an empty cache directory")
    parser.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cache = Path(tempfile.mkdtemp(prefix="k8ssec-cold-cache-")) if args.cold else cache_dir()
    cluster = LocalCluster(default_run_dir(), cache, args.k8s_version)
    if cluster.is_up():
        cluster.down(quiet=True)

    t0 = time.monotonic()
    cluster.build()
    print(f"build ({'cold' if args.cold else 'cached'}):      {time.monotonic() - t0:7.1f}s")
    for name, seconds in cluster.timings.items():
        if name.startswith("build "):
            print(f"  {name:28} {seconds:7.1f}s")

    t0 = time.monotonic()
    cluster.up(load_profile())
    print(f"start to ready:       {time.monotonic() - t0:7.1f}s")
    print_memory(cluster)

    t0 = time.monotonic()
    cluster.down(quiet=True)
    print(f"stop:                 {time.monotonic() - t0:7.1f}s")
    if args.cold:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
