"""Screenshots of HTML reports, for a person to look at: how a failing and a passing run read.

    python benchmarks/report_pages.py DIR/k8s-sec-report.json [...]

Renders each report again (as `python -m pytest_k8ssec.report render` does) and writes
k8s-sec-report.png beside it with headless Chromium (Debian's `chromium`). Prints the time of
each step; nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

from pytest_k8ssec.baseline import load_report
from pytest_k8ssec.document import write_renderings


def screenshot(page: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,2400", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path)
    for report in parser.parse_args().reports:
        t0 = time.monotonic()
        write_renderings(load_report(report), report.parent)
        t1 = time.monotonic()
        png = report.parent / "k8s-sec-report.png"
        screenshot(report.parent / "k8s-sec-report.html", png)
        print(f"{report}: rendered in {t1 - t0:.2f}s, screenshot {png} in {time.monotonic() - t1:.1f}s")


if __name__ == "__main__":
    main()
