"""`python -m pytest_k8ssec.report`: the report's renderings again from its JSON, and fleet reports merged from runs.

The report itself is made by the run (`report_hooks`, `document`); this is its command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .baseline import load_report
from .document import write_renderings
from .errors import K8sSecError


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
