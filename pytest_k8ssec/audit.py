"""Reading the API server's audit log and matching the events of tagged requests (AUDIT-1).

Requests are tagged with a unique user agent, so the suite finds exactly its own events among
everything else the server records, and can also prove that untagged-policy requests are absent.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .handle import ClusterHandle


@dataclass(frozen=True)
class Expected:
    """A request the suite made and how its audit event must look (None: must not be recorded)."""

    verb: str
    resource: str
    subresource: str
    namespace: str
    code: int
    level: str | None

    @property
    def label(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {res} in {self.namespace} -> {self.code}"


class AuditSource:
    """Where the audit log can be read: a file on this machine, or a command printing it."""

    def __init__(self, handle: ClusterHandle) -> None:
        self.path = handle.audit_log
        self.command = handle.audit_log_command

    @property
    def available(self) -> bool:
        return bool(self.command) or bool(self.path and self.path.exists())

    def why_unavailable(self) -> str:
        if self.path and not self.path.exists():
            return f"the audit log {self.path} does not exist or is not readable here"
        return ("no audit log is reachable: on an existing cluster set audit.log_path (a readable file) or "
                "audit.log_command in the profile")

    def mark(self) -> int:
        """A position to read from later (file size now; 0 for commands)."""
        return self.path.stat().st_size if self.path and not self.command else 0

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        if self.command:
            text = subprocess.run(self.command, shell=True, capture_output=True, text=True, timeout=60).stdout
        else:
            with Path(self.path).open("rb") as f:  # type: ignore[arg-type]
                f.seek(since)
                text = f.read().decode(errors="replace")
        return parse_events(text)


def parse_events(text: str) -> list[dict[str, Any]]:
    """JSON-lines audit events; partial or foreign lines are skipped."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("kind") == "Event":
                events.append(event)
    return events


def tagged(events: list[dict[str, Any]], user_agent: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("userAgent", "").startswith(user_agent)]


def matches(event: dict[str, Any], exp: Expected) -> bool:
    ref = event.get("objectRef", {})
    return (event.get("verb") == exp.verb and ref.get("resource") == exp.resource
            and ref.get("subresource", "") == exp.subresource and ref.get("namespace", "") == exp.namespace)


@dataclass
class Findings:
    """What matched, what was missing or wrong, and what should not have been there."""

    missing: list[str]
    wrong: list[str]
    unexpected: list[str]
    request_received: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.unexpected or self.request_received)

    def render(self) -> str:
        parts = []
        if self.missing:
            parts.append("expected events missing from the audit log:\n  " + "\n  ".join(self.missing))
        if self.wrong:
            parts.append("events recorded with the wrong fields:\n  " + "\n  ".join(self.wrong))
        if self.unexpected:
            parts.append("requests the policy does not cover were recorded:\n  " + "\n  ".join(self.unexpected))
        if self.request_received:
            parts.append(f"{self.request_received} events at stage RequestReceived, which the policy omits")
        return "\n".join(parts)


LEVELS = ("None", "Metadata", "Request", "RequestResponse")


def judge(events: list[dict[str, Any]], expected: list[Expected], user: str, exact: bool = True) -> Findings:
    """Compare the tagged events with the expected requests.

    `exact`: the cluster runs the profile's own policy, so requests it does not cover must be
    absent and levels equal. Otherwise (a production policy that records more) the profile's
    policy is a floor: a covered request must be recorded at its level or above.
    """
    done = [e for e in events if e.get("stage") == "ResponseComplete"]
    missing, wrong, unexpected = [], [], []
    for exp in expected:
        found = [e for e in done if matches(e, exp)]
        if exp.level is None:
            if exact:
                unexpected += [f"{exp.label} (level {e.get('level')})" for e in found]
            continue
        if not found:
            missing.append(exp.label)
            continue
        e = found[0]
        level, who, code = e.get("level"), e.get("user", {}).get("username"), e.get("responseStatus", {}).get("code")
        level_ok = level == exp.level if exact else LEVELS.index(level) >= LEVELS.index(exp.level) if level in LEVELS else False
        if not (level_ok and who == user and code == exp.code):
            wrong.append(f"{exp.label}: level/user/code {(level, who, code)}, expected {(exp.level, user, exp.code)}"
                         + ("" if exact else " (level or above)"))
    request_received = sum(1 for e in events if e.get("stage") == "RequestReceived") if exact else 0
    return Findings(missing, wrong, unexpected, request_received)
