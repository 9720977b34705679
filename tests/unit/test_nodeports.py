"""NODE-1's pure part: the probes a pod runs, reading what came back, and judging it; no answer is never a refusal."""

import socket
import ssl
import subprocess
import threading

import pytest

from pytest_k8ssec import nodeports as npx


def test_the_kubelet_is_asked_without_credentials_and_with_the_token_on_each_path():
    probes = npx.kubelet_probes("n1", "10.0.0.5", 10250, "/exec/ns/p/main?command=true")
    asked = {(p.url, p.as_whom, p.expected) for p in probes}
    for path in ("/pods", "/exec/ns/p/main?command=true", "/configz", "/metrics"):
        assert (f"https://10.0.0.5:10250{path}", npx.ANONYMOUS, npx.UNAUTHORIZED) in asked
        assert (f"https://10.0.0.5:10250{path}", npx.TOKEN, npx.FORBIDDEN) in asked
    assert ("http://10.0.0.5:10255/pods", npx.ANONYMOUS, npx.NOT_SERVED) in asked
    assert {p.component for p in npx.control_plane_probes("n1", ["10.0.0.1"])} == {
        "etcd", "kube-controller-manager", "kube-scheduler"}


@pytest.mark.parametrize("code, stderr, kind, status", [
    (1, "Connecting to 10.0.0.5:10250 (10.0.0.5:10250) HTTP/1.1 401 Unauthorized wget: server returned error: "
        "HTTP/1.1 401 Unauthorized", "http", 401),
    (0, "Connecting to 10.0.0.5:10255 (10.0.0.5:10255) HTTP/1.1 200 OK", "http", 200),
    (1, "HTTP/1.0 400 Bad Request wget: server returned error: HTTP/1.0 400 Bad Request", "http", 400),
    (143, "Connecting to 10.0.0.1:2379 (10.0.0.1:2379)", "no answer", 0),
    (1, "wget: can't connect to remote host (10.0.0.5): Connection refused", "refused connection", 0),
    (1, "wget: error getting response: Connection reset by peer", "tls refused", 0),
    (1, "wget: TLS error from peer (alert code 42): bad certificate", "tls refused", 0),
    (139, "", "error", 0),
])
def test_what_came_back_is_read_from_wget(code, stderr, kind, status):
    seen = npx.classify(code, stderr)
    assert (seen.kind, seen.status) == (kind, status)


def test_only_an_answer_is_a_refusal_and_a_closed_port_must_stay_silent():
    kubelet = npx.kubelet_probes("n1", "10.0.0.5", 10250, "/exec/ns/p/main")
    anonymous, token, read_only = kubelet[0], kubelet[1], kubelet[-1]
    assert npx.meets(anonymous, npx.Seen("http", 401))
    assert not npx.meets(anonymous, npx.Seen("http", 403))   # anonymous authentication on, webhook refusing
    assert not npx.meets(anonymous, npx.Seen("no answer"))   # silence is never a refusal
    assert npx.meets(token, npx.Seen("http", 403)) and not npx.meets(token, npx.Seen("http", 200))
    assert npx.meets(read_only, npx.Seen("refused connection")) and npx.meets(read_only, npx.Seen("no answer"))
    assert not npx.meets(read_only, npx.Seen("http", 200))
    etcd = npx.control_plane_probes("n1", ["10.0.0.1"])[0]
    assert npx.meets(etcd, npx.Seen("tls refused")) and not npx.meets(etcd, npx.Seen("http", 200))
    assert not npx.meets(etcd, npx.Seen("refused connection"))


def test_the_pod_asks_plain_http_itself_in_one_script(tmp_path):
    probes = [p for p in npx.kubelet_probes("n1", "127.0.0.1", 1, "/exec/ns/p/main") if not p.tls]
    assert [p.url for p in probes] == ["http://127.0.0.1:10255/pods"]
    with pytest.raises(ValueError, match="HTTPS goes through the relay"):
        npx.probe_script(npx.kubelet_probes("n1", "127.0.0.1", 1, "/exec/ns/p/main"))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "wget").write_text("#!/bin/sh\necho 'wget: server returned error: HTTP/1.1 200 OK' >&2\nexit 0\n")
    (fake / "wget").chmod(0o755)
    out = subprocess.run(["sh", "-c", npx.probe_script(probes, timeout_s=2)], capture_output=True, text=True,
                         env={"PATH": f"{fake}:/usr/bin:/bin"}).stdout
    assert str(npx.parse(out, probes)[probes[0].id]) == "HTTP 200"
    assert npx.parse("", probes)[probes[0].id].kind == "error"


def test_each_https_probe_gets_its_own_relay_in_the_pod():
    probes = npx.kubelet_probes("n1", "10.0.0.5", 10250, "/exec/ns/p/main") + npx.control_plane_probes("n1", ["10.0.0.1"])
    relays = npx.relay_ports(probes)
    assert set(relays) == {p.id for p in probes if p.tls} and len(set(relays.values())) == len(relays) == 8 + 1 + 4
    command = npx.relay_command(probes, relays)[-1]
    assert f"nc -l -p {relays[probes[0].id]} -e nc -w 3 10.0.0.5 10250 &" in command
    assert command.count("nc -l -p") == len(relays)


@pytest.fixture
def tls_server(tmp_path):
    """A TLS server on localhost answering 401 unless the request carries the bearer token `good`, then 200."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=x", "-days", "1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    request = tls.recv(4096)
                    status = "200 OK" if b"Bearer good" in request else "401 Unauthorized"
                    tls.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
            except (OSError, ssl.SSLError):
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_https_through_a_connected_socket_reads_the_status_and_sends_the_token_only_as_asked(tls_server):
    anonymous, token = npx.kubelet_probes("n1", "127.0.0.1", tls_server, "/exec/ns/p/main")[:2]
    assert str(npx.https_get(socket.create_connection(("127.0.0.1", tls_server)), anonymous, "good")) == "HTTP 401"
    assert str(npx.https_get(socket.create_connection(("127.0.0.1", tls_server)), token, "good")) == "HTTP 200"
    closed = socket.socketpair()
    closed[1].close()  # the relay could not reach the endpoint: it closes at once
    assert npx.https_get(closed[0], anonymous, None).kind == "no answer"


def test_a_wrong_cell_says_how_to_repeat_it_by_hand():
    https, read_only = (npx.kubelet_probes("n1", "10.0.0.5", 10250, "/exec/ns/p/main")[i] for i in (1, -1))
    repeat = npx.command(https, "ns", "probe-0", 20000)
    assert repeat.startswith("kubectl exec -n ns probe-0 -- nc -l -p 20000 -e nc -w 3 10.0.0.5 10250 & "
                             "kubectl port-forward -n ns probe-0 20000 & curl -sk")
    assert "--connect-to 10.0.0.5:10250:127.0.0.1:20000 https://10.0.0.5:10250/pods" in repeat and "Bearer $(kubectl" in repeat
    assert npx.command(read_only, "ns", "probe-0") == ("kubectl exec -n ns probe-0 -- timeout 5 wget -S -O /dev/null "
                                                       "http://10.0.0.5:10255/pods")
