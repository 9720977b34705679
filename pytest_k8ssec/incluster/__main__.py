"""python -m pytest_k8ssec.incluster image|manifest|fetch|run: the suite as a Job inside the cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .. import fleet
from ..claims import load_claims
from ..cluster.existing import kubeconfig_path
from ..errors import K8sSecError
from ..kube import api_client
from ..settings import Settings
from . import image, job
from .manifest import Names, objects


def main(argv: list[str] | None = None) -> int:
    """image: build the runner's image tar. manifest: print the objects to apply (`kubectl apply -f -`); arguments
    after `--` go to pytest in the Job. fetch: wait for the Job, copy its reports out, remove its objects; exit as the
    suite did. run: the Job's entrypoint."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m pytest_k8ssec.incluster", description=main.__doc__)
    parser.add_argument("command", choices=["image", "manifest", "fetch", "run"])
    parser.add_argument("--name", default="k8s-sec", help="labels every object; the namespace is NAME-incluster")
    parser.add_argument("--project", type=Path, default=Path("."), help="image: the project's checkout (default .)")
    parser.add_argument("--out", type=Path, help="image: where the tar goes (default .); fetch: the report directory "
                        "(default k8s-sec-incluster)")
    parser.add_argument("--image", default=image.REFERENCE, help=f"manifest: the runner's image (default {image.REFERENCE})")
    parser.add_argument("--pull-policy", default="IfNotPresent", choices=["IfNotPresent", "Always", "Never"])
    parser.add_argument("--profile", type=Path, help="manifest: a profile file, mounted into the Job")
    parser.add_argument("--claims", type=Path, help="manifest: a claims file, mounted into the Job")
    parser.add_argument("--allow-cluster-changes", action="store_true",
                        help="manifest: the whole suite, with cluster-admin; without it only namespaced rights")
    parser.add_argument("--apply", action="store_true", help="manifest: create the objects instead of printing them")
    parser.add_argument("--kubeconfig", help="manifest --apply and fetch: the cluster's kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--context", help="its context")
    parser.add_argument("--timeout", type=float, default=1800, help="fetch: seconds to wait for the Job (default 1800)")
    args = parser.parse_args(argv)
    try:
        names = Names(args.name)
        if args.command == "run":
            return job.run(pytest_args)
        if args.command == "image":
            print(image.build(args.project, args.out or Path(".")))
            return 0
        if args.command == "manifest":
            docs = objects(names, image=args.image, pull_policy=args.pull_policy, profile=_text(args.profile),
                           claims=_text(args.claims), pod_files=_pod_files(args.claims),
                           allow_cluster_changes=args.allow_cluster_changes, pytest_args=pytest_args)
            if not args.apply:
                print(yaml.safe_dump_all(docs, sort_keys=False), end="")
                return 0
            job.apply(_api(args), docs)
            print(f"applied: the Job runs in namespace {names.namespace}; then: python -m pytest_k8ssec.incluster fetch"
                  + (f" --name {names.name}" if names.name != Names().name else ""))
            return 0
        out = args.out or Path("k8s-sec-incluster")
        code = job.fetch(_api(args), names, out, args.timeout)
    except (K8sSecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    row = fleet.merge([out])["clusters"][0]
    print(f"in-cluster run {names.name}: {row['verdict'].upper()}" + (f" ({'; '.join(row['short'])})" if row["short"] else ""))
    print(f"reports in {out}; the suite exited {code} in the Job")
    return code


def _api(args: argparse.Namespace):
    """The cluster's client: --kubeconfig, else $KUBECONFIG's first file, else ~/.kube/config, as the suite finds it."""
    return api_client(str(kubeconfig_path(Settings(kubeconfig=args.kubeconfig))), args.context)


def _text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError as exc:
        raise K8sSecError(f"cannot read {path}: {exc.strerror}") from None


def _pod_files(claims: Path | None) -> dict[str, str]:
    """The pod files a valid claims file names, to mount beside it in the Job."""
    if claims is None:
        return {}
    load_claims(claims)
    names = [c["admission"]["file"] for c in yaml.safe_load(claims.read_text()).get("claims", [])
             if isinstance(c.get("admission"), dict) and "file" in c["admission"]]
    nested = [n for n in names if "/" in n]
    if nested:
        raise K8sSecError(f"claims file {claims}: pod file {nested[0]} is not beside it: an in-cluster run mounts only "
                          "files beside the claims file")
    return {name: (claims.parent / name).read_text() for name in names}


if __name__ == "__main__":
    sys.exit(main())
