"""Helpers the negative-control tests share (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import yaml

from pytest_k8ssec.profile import default_profile_path


def profile_with(change) -> str:
    data = yaml.safe_load(default_profile_path().read_text())
    change(data)
    return yaml.safe_dump(data)


def failed(result) -> set[str]:
    """The names of the cases that failed, from `-v` output."""
    return {line.split("::", 1)[1].split(" FAILED")[0] for line in result.stdout.lines
            if "::" in line and " FAILED" in line and not line.startswith("FAILED")}
