"""Probing (netpol/probe.py): the script, its output, the reproduce commands.

The probe script is also run for real, with /bin/sh and busybox wget, against loopback ports only.
"""

import http.server
import os
import socket
import subprocess
import threading

import pytest

from pytest_k8ssec.netpol import policies as pol
from pytest_k8ssec.netpol.expected import expected_table
from pytest_k8ssec.netpol.model import Port
from pytest_k8ssec.netpol.probe import (Observation, ProbeTarget, Tools, parse_probe_output, probe_script,
                                        reproduce_commands)
from pytest_k8ssec.netpol.truthtable import wrong_cells

from netpol_seed import A, E, HTTP, RUN, SEED, T, X

def test_reproduce_command_per_wrong_cell():
    observed = expected_table(SEED, [])
    wrong = wrong_cells(expected_table(SEED, [pol.default_deny_ingress(T, labels=RUN)]), observed)
    commands = reproduce_commands(wrong, SEED, {"tenant/nginx": "10.244.1.7", "tenant/svc:nginx": "10.96.0.20"})
    assert commands[0] == (
        "kubectl exec -n k8ssec-r1-tenant access -- sh -c 'timeout 3 wget -q -O - http://10.244.1.7:80'"
        "  # tenant/access -> tenant/nginx port 80/TCP (http): expected BLOCKED, observed ALLOWED")
    assert len(commands) == 4 and "-T" not in " ".join(commands)


# --- probe output ----------------------------------------------------------------------------------

WEB = ProbeTarget("tenant/nginx", HTTP, "10.244.1.7")


@pytest.mark.parametrize("line, expected", [
    ("tenant/nginx:80 0", A),
    ("tenant/nginx:80 143", X),
    ("tenant/nginx:80 124", X),
    ("tenant/nginx:80 1 wget: can't connect to remote host (10.244.1.7): Connection refused", X),
    ("tenant/nginx:80 1 wget: can't connect to remote host (10.244.1.7): Host is unreachable", X),
    ("tenant/nginx:80 1 wget: server returned error: HTTP/1.1 404 Not Found", E),
    ("tenant/nginx:80 1 wget: bad address 'nginx'", E),
    ("tenant/nginx:80 139", E),
    ("tenant/nginx:80 127 sh: timeout: not found", E),
    ("tenant/nginx:80 2", E),
    ("tenant/nginx:80 banana", E),
    ("tenant/nginx:80", E),
    ("", E),
    ("other/x:80 0", E),
    ("tenant/nginx:80 0\ntenant/nginx:80 143", E),
], ids=["allowed", "timeout busybox 143", "timeout coreutils 124", "refused", "no route musl", "HTTP 404",
        "DNS failure", "segfault 139", "timeout missing", "other status", "garbage", "no status",
        "crashed exec, no output", "missing line", "duplicate lines"])
def test_probe_output_parser(line, expected):
    assert parse_probe_output(line, [WEB])[WEB].outcome is expected


def test_parser_ignores_shell_noise_and_keeps_the_reason():
    observed = parse_probe_output("Terminated\ntenant/nginx:80 139\n", [WEB])[WEB]
    assert observed == Observation(E, "wget crashed (segmentation fault) (exit 139)")


@pytest.mark.parametrize("target, error, match", [
    (ProbeTarget("tenant/nginx", Port(53, protocol="UDP"), "10.0.0.1"), NotImplementedError, "TCP only"),
    (ProbeTarget("tenant/a b", HTTP, "10.0.0.1"), ValueError, "echoed back as one word"),
], ids=["udp", "space in id"])
def test_probe_script_refuses_what_it_cannot_probe(target, error, match):
    with pytest.raises(error, match=match):
        probe_script([target])


def test_probe_script_refuses_duplicate_targets():
    with pytest.raises(ValueError, match="unique"):
        probe_script([WEB, WEB])


# --- the script, for real, with busybox on loopback ------------------------------------------------

BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK), reason="needs /bin/busybox (busybox-static)")


def _server(status: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def loopback():
    """Ports on 127.0.0.1: answering 200, answering 404, accepting but never answering, closed."""
    servers = [_server(200), _server(404)]
    silent = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield {"ok": servers[0].server_port, "missing": servers[1].server_port,
           "silent": silent.getsockname()[1], "closed": closed_port}
    for s in servers:
        s.shutdown()
        s.server_close()
    silent.close()


def run_script(shell, targets, tools, timeout_s=1):
    done = subprocess.run([*shell, "-c", probe_script(targets, timeout_s, tools)], capture_output=True, text=True,
                          timeout=timeout_s + 10)
    return parse_probe_output(done.stdout, targets)


@needs_busybox
@pytest.mark.parametrize("shell", [["/bin/sh"], [BUSYBOX, "sh"]], ids=["sh", "busybox sh"])
def test_probe_script_with_real_busybox_wget(loopback, shell):
    targets = {name: ProbeTarget(f"lo/{name}", Port(port), "127.0.0.1") for name, port in loopback.items()}
    tools = Tools(wget=(BUSYBOX, "wget"), timeout=(BUSYBOX, "timeout"))
    observed = run_script(shell, list(targets.values()), tools)
    assert {name: observed[t].outcome for name, t in targets.items()} == {
        "ok": A, "silent": X, "closed": X, "missing": E}
    assert observed[targets["silent"]].detail == "no answer: killed by timeout (SIGTERM)"
    assert "Connection refused" in observed[targets["closed"]].detail
    assert "404" in observed[targets["missing"]].detail


@needs_busybox
def test_crashing_wget_is_an_error_not_blocked(loopback):
    target = ProbeTarget("lo/ok", Port(loopback["ok"]), "127.0.0.1")
    crashing = Tools(wget=(BUSYBOX, "wget", "-T", "1"), timeout=(BUSYBOX, "timeout"))  # busybox 1.35's -T segfaults
    assert run_script(["/bin/sh"], [target], crashing)[target] == Observation(
        E, "wget crashed (segmentation fault) (exit 139)")
