"""In-place upgrade of the local cluster: how long it takes, and how long the API server is away.

    python benchmarks/upgrade.py [--from v1.36.3] [--to v1.37.2]

Starts a cluster on --from (building it if missing; the build is not timed), upgrades it to
--to with cached binaries, and prints the duration of each upgrade step and the longest time
/readyz did not answer 200, polled every 0.1 s from another thread. A running cluster is
stopped first; the cluster is left stopped. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

from pytest_k8ssec.local import health
from pytest_k8ssec.local.cluster import LocalCluster, default_run_dir
from pytest_k8ssec.local.upgrade import upgrade
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION, cache_dir


def watch_readyz(cluster: LocalCluster, stop: threading.Event, gaps: list[float]) -> None:
    """Append the length of every stretch in which /readyz did not answer."""
    down_since = None
    while not stop.wait(0.1):
        ready = health.api_ready(cluster.layout)
        now = time.monotonic()
        if not ready and down_since is None:
            down_since = now
        elif ready and down_since is not None:
            gaps.append(now - down_since)
            down_since = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", default="v1.36.3")
    parser.add_argument("--to", default=DEFAULT_K8S_VERSION)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cluster = LocalCluster(default_run_dir(), cache_dir(), args.start)
    if cluster.is_up():
        cluster.down(quiet=True)
    LocalCluster(default_run_dir(), cache_dir(), args.to).build()  # cached binaries for the timed part
    cluster.up(load_profile())
    stop, gaps = threading.Event(), []
    watcher = threading.Thread(target=watch_readyz, args=(cluster, stop, gaps))
    watcher.start()
    t0 = time.monotonic()
    try:
        upgrade(cluster, args.to)
        print(f"upgrade {args.start} -> {args.to}: {time.monotonic() - t0:7.1f}s")
    finally:
        stop.set()
        watcher.join()
        cluster.down(quiet=True)
    for name, seconds in cluster.timings.items():
        if name.startswith("upgrade ") or name == "node ready":
            print(f"  {name:44} {seconds:7.1f}s")
    print(f"API server unavailable: longest {max(gaps, default=0.0):.1f}s, {len(gaps)} time(s), {sum(gaps):.1f}s in all")


if __name__ == "__main__":
    main()
