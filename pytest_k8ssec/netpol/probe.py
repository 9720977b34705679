"""Probing from a pod, the pure part: the one script a source pod runs, and reading its output.

Each target is probed in a backgrounded subshell with `timeout N wget -q -O - URL` (never
busybox wget's own `-T`: it segfaults in Debian's busybox 1.35) and prints one line
`ID STATUS STDERR`. Python, not the shell, decides the outcome, so the rules live in one
tested place, and anything they do not recognise is ERROR, never BLOCKED.

Measured with busybox 1.35 (Debian): success 0; killed by `timeout` 143 (SIGTERM; coreutils'
timeout says 124); refused connection 1 with "can't connect to remote host (IP): Connection
refused"; HTTP error 1 with "server returned error: HTTP/1.1 404 ..."; `wget -T` 139.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .model import Model, Port
from .truthtable import Mismatch, Outcome

TIMED_OUT = {143: "no answer: killed by timeout (SIGTERM)", 124: "no answer: timeout expired"}
CONNECT_FAILED = "can't connect to remote host"
# strerror texts a rejecting policy produces (glibc and musl spellings); a dropping one times out
REFUSED = ("Connection refused", "No route to host", "Host is unreachable", "Network is unreachable",
           "Network unreachable", "Connection timed out", "Operation timed out")
KNOWN_FAILURES = {139: "wget crashed (segmentation fault)", 127: "wget or timeout not found in the pod",
                  126: "wget or timeout not executable"}
_ID = re.compile(r"[A-Za-z0-9._:/-]+")


@dataclass(frozen=True)
class Tools:
    """How the script calls wget and timeout: plain names on the pod's PATH, or e.g. busybox applets."""

    wget: tuple[str, ...] = ("wget",)
    timeout: tuple[str, ...] = ("timeout",)


@dataclass(frozen=True)
class ProbeTarget:
    """One cell's destination as the source pod reaches it: table column, port and the IP to dial."""

    destination: str
    port: Port
    host: str

    @property
    def id(self) -> str:
        return f"{self.destination}:{self.port.number}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port.number}"


@dataclass(frozen=True)
class Observation:
    outcome: Outcome
    detail: str


def _wget_prefix(timeout_s: int, tools: Tools) -> str:
    words = [*tools.timeout, str(timeout_s), *tools.wget, "-q", "-O", "-"]
    return " ".join(shlex.quote(w) for w in words)


def wget_command(url: str, timeout_s: int, tools: Tools = Tools()) -> str:
    """The probe as a shell command line, the same one the script runs, for reproducing a cell by hand."""
    return f"{_wget_prefix(timeout_s, tools)} {shlex.quote(url)}"


def probe_script(targets: Sequence[ProbeTarget], timeout_s: int = 3, tools: Tools = Tools()) -> str:
    """A POSIX sh script probing all targets in parallel; it ends when the slowest probe does."""
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"probe targets must be unique, got {ids}")
    for t in targets:
        if t.port.protocol != "TCP":
            raise NotImplementedError(f"{t.id}: wget probes TCP only, not {t.port.protocol}")
        if not _ID.fullmatch(t.id):
            raise ValueError(f"probe id {t.id!r} must match {_ID.pattern}: it is echoed back as one word")
    lines = [
        "set -f",  # the unquoted $err below must split on whitespace without globbing
        "line() { printf '%s\\n' \"$*\"; }",
        "probe() {",
        f"  err=$({_wget_prefix(timeout_s, tools)} \"$2\" 2>&1 >/dev/null)",
        "  rc=$?",
        "  line \"$1\" \"$rc\" $err",
        "}",
        *(f"probe {shlex.quote(t.id)} {shlex.quote(t.url)} &" for t in targets),
        "wait",
    ]
    return "\n".join(lines) + "\n"


def classify(status: int, message: str) -> Observation:
    """Outcome of one probe from wget's exit status and stderr text."""
    if status == 0:
        return Observation(Outcome.ALLOWED, "")
    if status in TIMED_OUT:
        return Observation(Outcome.BLOCKED, TIMED_OUT[status])
    if status == 1 and CONNECT_FAILED in message and any(r in message for r in REFUSED):
        return Observation(Outcome.BLOCKED, f"rejected: {message}")
    meaning = KNOWN_FAILURES.get(status, "unrecognised result")
    return Observation(Outcome.ERROR, f"{meaning} (exit {status}): {message}".rstrip(": "))


def result_lines(output: str, ids: set[str]) -> dict[str, list[str]]:
    """Each id's result lines in a probe script's output (`<id> <result>` per line); other lines are ignored."""
    found: dict[str, list[str]] = {}
    for raw in output.splitlines():
        ident, _, rest = raw.strip().partition(" ")
        if ident in ids:
            found.setdefault(ident, []).append(rest)
    return found


def parse_probe_output(output: str, targets: Sequence[ProbeTarget]) -> dict[ProbeTarget, Observation]:
    """Observations for every target; a target without exactly one readable line is ERROR."""
    found = result_lines(output, {t.id for t in targets})
    result = {}
    for t in targets:
        lines = found.get(t.id, [])
        if len(lines) != 1:
            what = "no result line (the probe or the exec died)" if not lines else f"{len(lines)} result lines"
            result[t] = Observation(Outcome.ERROR, what)
            continue
        status, _, message = lines[0].partition(" ")
        result[t] = (classify(int(status), message) if status.isdigit()
                     else Observation(Outcome.ERROR, f"unreadable result line {lines[0]!r}"))
    return result


def reproduce_commands(mismatches: Sequence[Mismatch], model: Model, addresses: Mapping[str, str],
                       timeout_s: int = 3) -> list[str]:
    """One kubectl command per wrong cell that repeats its probe; `addresses` maps destination to IP."""
    pods = {p.short: p for p in model.pods}
    out = []
    for m in mismatches:
        source = pods[m.source]
        url = ProbeTarget(m.destination, m.port, addresses[m.destination]).url
        inner = wget_command(url, timeout_s)
        out.append(f"kubectl exec -n {model.real_name(source.namespace)} {source.name} -- sh -c {shlex.quote(inner)}"
                   f"  # {m}")
    return out
