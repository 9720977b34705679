"""Drive the local cluster by hand: `python -m pytest_k8ssec.local build|up|status|upgrade --to VERSION|down`."""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import K8sSecError
from ..profile import load_profile
from ..settings import DEFAULT_K8S_VERSION
from .cluster import LocalCluster, default_run_dir
from .upgrade import upgrade, versions as component_versions
from ..settings import cache_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_k8ssec.local", description=__doc__)
    parser.add_argument("command", choices=["build", "up", "status", "upgrade", "down"])
    parser.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION, help="Kubernetes release to build and run (v1.30 or newer)")
    parser.add_argument("--profile", help="profile whose audit policy the API server runs with")
    parser.add_argument("--to", metavar="VERSION", help="upgrade: the release to upgrade the running cluster to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cluster = LocalCluster(default_run_dir(), cache_dir(), args.k8s_version)
    try:
        if args.command == "build":
            cluster.build()
        elif args.command == "up":
            handle = cluster.up(load_profile(args.profile))
            print(f"ready: export KUBECONFIG={handle.kubeconfig}")
        elif args.command == "upgrade":
            if not args.to:
                parser.error("upgrade needs --to VERSION, e.g. --to v1.37.2")
            upgrade(cluster, args.to)
            print(f"upgraded to {args.to}")
        elif args.command == "status":
            versions = component_versions(cluster)
            for name, ok in cluster.running().items():
                print(f"{name:25} {'running' if ok else 'DEAD':8} {versions.get(name, '')}".rstrip())
            print("cluster is up" if cluster.is_up() else "cluster is not up")
            return 0 if cluster.is_up() else 1
        else:
            cluster.down()
    except K8sSecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, seconds in cluster.timings.items():
        print(f"{name:30} {seconds:6.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
