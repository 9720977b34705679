"""The node as a pod meets it (NODE-1): the kubelet's and the control plane's ports probed from an unprivileged pod.

The pure part (the probes, what the pod runs, reading what came back, judging each row) is
here and tested alone; conformance/test_node.py creates the pods and runs the probes.

Plain HTTP (the kubelet's read-only port, etcd without TLS) is asked by the pod itself, all in
one exec: `timeout N wget -S -O /dev/null URL` (busybox; `-S` prints the status line; never
`-T`, which crashes Debian's busybox 1.35), one line `ID EXIT STDERR` each.

HTTPS cannot be: busybox wget's own TLS (Debian's 1.35, without an `openssl` binary beside it,
as in the local images) has its handshake refused by Go and OpenSSL servers alike ("TLS error
from peer (alert code 40)"). So the pod relays instead: its container runs one busybox
`nc -l -p LOCAL -e nc -w 3 HOST PORT` per probe, and the suite speaks TLS and HTTP (no
certificate checks, as busybox never did) through a port-forward to that relay. The TCP
connection to the endpoint still starts in the pod's network namespace, from its address, and
the request carries no credentials or the pod's own token, read from the pod.

What came back is one of: an HTTP status (the endpoint answered), a refused connection
(nothing listens), no answer (timed out, or through the relay: closed before any TLS byte), a
TLS refusal from the peer (e.g. etcd without a client certificate), or an error the rules do not
recognise. "No answer" and "refused connection" are never read as the endpoint refusing a
request: only an answer is.
"""

from __future__ import annotations

import re
import shlex
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from .netpol.probe import result_lines

TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
PROBE_TIMEOUT = 5
KUBELET_READ_ONLY_PORT = 10255
ETCD_PORT, CONTROLLER_MANAGER_PORT, SCHEDULER_PORT = 2379, 10257, 10259

ANONYMOUS, TOKEN = "no credentials", "the pod's service-account token"
# What a row expects: an HTTP status, any refusal of the request, or no service on the port.
UNAUTHORIZED, FORBIDDEN, REFUSED_REQUEST, NOT_SERVED = "HTTP 401", "HTTP 403", "HTTP 401 or 403", "no answer"

_STATUS = re.compile(r"HTTP/1\.[01] (\d{3})")
_ID = re.compile(r"[A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class Probe:
    """One request from the pod: where, as whom, and what the claim expects."""

    id: str
    component: str      # kubelet, kubelet read-only port, etcd, kube-controller-manager, kube-scheduler
    node: str           # the node the probing pod runs on
    url: str
    as_whom: str        # ANONYMOUS or TOKEN
    expected: str       # UNAUTHORIZED, FORBIDDEN, REFUSED_REQUEST or NOT_SERVED

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    @property
    def target(self) -> tuple[str, int]:
        """(host, port) the request goes to."""
        hostport = self.url.split("//", 1)[1].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def path(self) -> str:
        rest = self.url.split("//", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


@dataclass(frozen=True)
class Seen:
    """What came back: `status` is the HTTP status when the endpoint answered, else 0 with `kind` saying why."""

    kind: str           # "http", "refused connection", "no answer", "tls refused", "error"
    status: int = 0
    detail: str = ""

    @property
    def answered(self) -> bool:
        """The endpoint answered the request (an HTTP status, or a TLS refusal of the client)."""
        return self.kind in ("http", "tls refused")

    def __str__(self) -> str:
        if self.kind == "http":
            return f"HTTP {self.status}"
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


def url(host: str, port: int, path: str, scheme: str = "https") -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def kubelet_probes(node: str, address: str, port: int, exec_path: str) -> list[Probe]:
    """The kubelet's API on its node's address: without credentials 401, with the pod's token 403; its read-only port closed."""
    probes = []
    for path in ("/pods", exec_path, "/configz", "/metrics"):
        short = path.split("/")[1]
        probes.append(Probe(f"{node}:kubelet:{short}:anonymous", "kubelet", node, url(address, port, path), ANONYMOUS,
                            UNAUTHORIZED))
        probes.append(Probe(f"{node}:kubelet:{short}:token", "kubelet", node, url(address, port, path), TOKEN, FORBIDDEN))
    probes.append(Probe(f"{node}:kubelet-read-only:pods:anonymous", "kubelet read-only port", node,
                        url(address, KUBELET_READ_ONLY_PORT, "/pods", "http"), ANONYMOUS, NOT_SERVED))
    return probes


def control_plane_probes(node: str, addresses: Sequence[str]) -> list[Probe]:
    """etcd's client port and the controller-manager's and scheduler's secure ports on each control-plane address,
    without credentials (their health endpoints are public by design and out of the claim)."""
    probes = []
    for i, address in enumerate(addresses):
        probes.append(Probe(f"{node}:etcd:{i}:https", "etcd", node, url(address, ETCD_PORT, "/version"), ANONYMOUS,
                            REFUSED_REQUEST))
        probes.append(Probe(f"{node}:etcd:{i}:http", "etcd", node, url(address, ETCD_PORT, "/version", "http"), ANONYMOUS,
                            REFUSED_REQUEST))
        for component, port in (("kube-controller-manager", CONTROLLER_MANAGER_PORT), ("kube-scheduler", SCHEDULER_PORT)):
            for path in ("/metrics", "/configz"):
                probes.append(Probe(f"{node}:{component}:{i}:{path[1:]}", component, node, url(address, port, path),
                                    ANONYMOUS, REFUSED_REQUEST))
    return probes


def relay_ports(probes: Sequence[Probe], first: int = 20000) -> dict[str, int]:
    """The pod's local relay port for every HTTPS probe: one each, so each relay serves one connection."""
    return {p.id: first + i for i, p in enumerate(q for q in probes if q.tls)}


def relay_command(probes: Sequence[Probe], relays: dict[str, int]) -> list[str]:
    """The probe pod's command: a one-connection busybox nc relay per HTTPS probe, then it idles (TERM ends it).

    `nc -l -p PORT -e PROG` is common to both of busybox's nc (Debian's, and the netcat 1.10
    compatible one of the public image); a persistent listener is not.
    """
    parts = []
    for p in probes:
        if p.id in relays:
            host, port = p.target
            parts.append(f"nc -l -p {relays[p.id]} -e nc -w 3 {shlex.quote(host)} {port} &")
    return ["sh", "-c", " ".join(parts) + " trap 'exit 0' TERM; while true; do sleep 1; done"]


def https_get(sock: socket.socket, p: Probe, token: str | None, timeout_s: float = PROBE_TIMEOUT) -> Seen:
    """GET the probe's path over TLS on a connected socket (the relay), with the token or nothing; what came back.

    The answer is read to its end and the socket drained before it is closed: a socket closed
    with unread data resets its peer (the port-forward's proxy thread, which then complains).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the refusal is checked, not the server's name
    sock.settimeout(timeout_s)
    host, port = p.target
    answer, conn = b"", sock
    try:
        conn = tls = ctx.wrap_socket(sock)
        auth = f"Authorization: Bearer {token}\r\n" if p.as_whom == TOKEN and token else ""
        tls.sendall(f"GET {p.path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Connection: close\r\n\r\n".encode())
        while len(answer) < 1 << 20:
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
    except socket.timeout:
        seen = Seen("no answer", detail=f"nothing within {timeout_s:g} s") if not answer else None
    except ssl.SSLError as exc:
        if "ALERT" in str(exc).upper():
            seen = Seen("tls refused", detail=str(exc)[:200])
        elif isinstance(exc, ssl.SSLEOFError) and not answer:
            seen = Seen("no answer", detail="the connection closed before any TLS answer (refused or unanswered)")
        else:
            seen = None if answer else Seen("error", detail=str(exc)[:200])
    except OSError as exc:  # reset or closed: through the relay, the endpoint did not answer
        seen = None if answer else Seen("no answer", detail=f"the connection closed before any answer ({exc})")
    else:
        seen = None
    _drain_and_close(conn)
    if seen is not None:
        return seen
    status = _STATUS.match(answer.decode("latin-1"))
    if status:
        return Seen("http", int(status.group(1)))
    if not answer:
        return Seen("tls refused", detail="the TLS session was closed with no HTTP answer")
    return Seen("error", detail=f"unreadable answer {answer[:80]!r}")


def _drain_and_close(sock: socket.socket) -> None:
    try:
        sock.settimeout(0.5)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


def probe_script(probes: Sequence[Probe], timeout_s: int = PROBE_TIMEOUT) -> str:
    """A POSIX sh script running every plain-HTTP probe in parallel."""
    ids = [p.id for p in probes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"probe ids must be unique, got {ids}")
    for p in probes:
        if p.tls or p.as_whom != ANONYMOUS:
            raise ValueError(f"{p.url} as {p.as_whom}: the pod's wget asks plain HTTP without credentials only; "
                             "HTTPS goes through the relay")
        if not _ID.fullmatch(p.id):
            raise ValueError(f"probe id {p.id!r} must match {_ID.pattern}: it is echoed back as one word")
    lines = [
        "set -f",
        "probe() {",
        "  id=$1; shift",
        f"  err=$(timeout {timeout_s} wget -S -O /dev/null \"$@\" 2>&1 >/dev/null)",
        "  rc=$?",
        "  printf '%s %s %s\\n' \"$id\" \"$rc\" \"$(printf '%s ' $err)\"",
        "}",
    ]
    for p in probes:
        lines.append(f"probe {shlex.quote(p.id)} {shlex.quote(p.url)} &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def command(p: Probe, namespace: str, pod: str, relay: int | None = None, timeout_s: int = PROBE_TIMEOUT) -> str:
    """The probe as commands to repeat it by hand: wget in the pod; HTTPS, curl through a port-forward to a new relay."""
    if p.tls and relay:
        auth = (f' -H "Authorization: Bearer $(kubectl exec -n {namespace} {pod} -- cat {TOKEN_PATH})"'
                if p.as_whom == TOKEN else "")
        host, port = p.target
        return (f"kubectl exec -n {namespace} {pod} -- nc -l -p {relay} -e nc -w 3 {host} {port} & "
                f"kubectl port-forward -n {namespace} {pod} {relay} & curl -sk -o /dev/null -w '%{{http_code}}'{auth} "
                f"--connect-to {host}:{port}:127.0.0.1:{relay} {shlex.quote(p.url)}")
    return f"kubectl exec -n {namespace} {pod} -- timeout {timeout_s} wget -S -O /dev/null {shlex.quote(p.url)}"


def classify(code: int, message: str) -> Seen:
    """What one probe saw, from wget's exit status and its stderr (with -S: the server's status lines)."""
    statuses = _STATUS.findall(message)
    if statuses:
        return Seen("http", int(statuses[-1]))
    if code in (143, 124):
        return Seen("no answer", detail=f"killed by timeout (exit {code})")
    if "Connection refused" in message:
        return Seen("refused connection", detail="nothing listens on the port")
    if any(m in message for m in ("No route to host", "Host is unreachable", "Network is unreachable",
                                  "Connection timed out")):
        return Seen("no answer", detail=message.strip()[:200])
    # A TLS server refusing a client without a certificate: an alert, or (measured against Python's ssl
    # server) the connection reset once busybox sends its empty certificate.
    if "TLS error from peer" in message or "Connection reset by peer" in message:
        return Seen("tls refused", detail=message.strip()[:200])
    return Seen("error", detail=f"exit {code}: {message.strip()[:200]}")


def parse(output: str, probes: Sequence[Probe]) -> dict[str, Seen]:
    """Every probe's result by id; a probe without exactly one readable line is an error, never a refusal."""
    found = result_lines(output, {p.id for p in probes})
    result = {}
    for p in probes:
        lines = found.get(p.id, [])
        if len(lines) != 1:
            result[p.id] = Seen("error", detail="no result line (the probe or the exec died)" if not lines
                                else f"{len(lines)} result lines")
            continue
        code, _, message = lines[0].partition(" ")
        result[p.id] = classify(int(code), message) if code.isdigit() else Seen("error", detail=f"unreadable {lines[0]!r}")
    return result


def meets(p: Probe, seen: Seen) -> bool:
    """Whether what came back is what the claim expects (an answer; or, for a closed port, none)."""
    if p.expected == NOT_SERVED:
        return seen.kind in ("refused connection", "no answer")
    if p.expected == REFUSED_REQUEST:
        return (seen.kind == "http" and seen.status in (400, 401, 403)) or seen.kind == "tls refused"
    return seen.kind == "http" and f"HTTP {seen.status}" == p.expected


def row(p: Probe, seen: Seen, pod: str) -> dict[str, str]:
    """One line of the evidence table."""
    return {"endpoint": f"GET {p.url}", "from": f"pod {pod} on {p.node}", "as": p.as_whom, "expected": p.expected,
            "observed": str(seen), "verdict": "ok" if meets(p, seen) else "WRONG"}
