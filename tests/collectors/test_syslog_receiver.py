"""The syslog receiver over real sockets: UDP, TCP framing, TLS, drops, back-pressure."""

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from collectors.syslog import Listener, SyslogReceiver


class Collected:
    """Runs a receiver's batches() in a thread and keeps what comes out."""

    def __init__(self, receiver: SyslogReceiver) -> None:
        self.receiver = receiver
        self.events: list[dict] = []
        self.rejected: list = []
        receiver.start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.receiver.batches():
            self.events.extend(batch.events)
            self.rejected.extend(batch.rejected)

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) + len(self.rejected) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.receiver.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def port(self, protocol: str) -> int:
        return next(p for proto, p in self.receiver.bound if proto == protocol)


@pytest.fixture
def receiver():
    made = []

    def make(*listeners, **kwargs):
        kwargs.setdefault("flush_seconds", 0.05)
        r = Collected(SyslogReceiver(list(listeners), **kwargs))
        made.append(r)
        return r

    yield make
    for r in made:
        r.receiver.stop()


def test_udp_messages_become_events_and_garbage_dead_letters(receiver):
    r = receiver(Listener("udp", "127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", r.port("udp"))
    sock.sendto(b"<38>Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for root from "
                b"203.0.113.5 port 4242 ssh2", target)
    sock.sendto(b"<14>1 2024-05-01T10:00:00.5+07:00 gw01 nginx 77 ID1 [meta@1 k=\"v\"] up", target)
    sock.sendto(b"\x00\xff\xfe\x16\x03\x01binary garbage\x80", target)
    sock.sendto(b"<13>Oct 11 22:14:15 host app: caf\xe9 latin-1 byte", target)
    r.wait_for(4)
    r.stop()
    by_dataset = {e["event"]["dataset"]: e for e in r.events}
    auth = by_dataset["system.auth"]
    assert auth["event"]["action"] == "ssh_login_failed"
    assert auth["source"]["ip"] == "203.0.113.5" and auth["user"]["name"] == "root"
    assert auth["log"]["source"]["address"].startswith("127.0.0.1:")
    assert auth["log"]["syslog"]["facility"]["name"] == "auth"
    generic = [e for e in r.events if e["event"]["dataset"] == "syslog"]
    assert {e["log"]["syslog"]["appname"] for e in generic} == {"nginx", "app"}
    nginx = next(e for e in generic if e["log"]["syslog"]["appname"] == "nginx")
    assert nginx["@timestamp"] == "2024-05-01T03:00:00.500000Z"
    assert nginx["log"]["syslog"]["structured_data"] == {"meta@1": {"k": "v"}}
    latin = next(e for e in generic if e["log"]["syslog"]["appname"] == "app")
    assert "invalid_utf8" in latin["tags"] and "caf\\xe9" in latin["message"]
    assert len(r.rejected) == 1
    assert "no syslog timestamp" in r.rejected[0].reason
    assert r.rejected[0].original.startswith(b"\x00\xff\xfe")
    assert r.rejected[0].source.startswith("syslog/udp/127.0.0.1:")
    c = r.receiver.counters
    assert (c.received, c.events, c.rejected, c.invalid_utf8, c.udp_dropped) == (4, 3, 1, 1, 0)


def test_tcp_octet_counting_newline_framing_and_a_huge_line(receiver):
    r = receiver(Listener("tcp", "127.0.0.1", 0))
    first = b"<13>1 2024-01-01T00:00:00Z h app - - - multi\nline message"
    huge = b"<13>Jan  1 00:00:00 h app: " + b"A" * (1 << 20) + b"\n"
    payload = (str(len(first)).encode() + b" " + first
               + b"<13>Jan  1 00:00:01 h app: newline framed\n"
               + huge
               + b"<13>Jan  1 00:00:02 h app: after the huge line\n"
               + b"2024-01-01T00:00:03Z h app: no PRI, starts with a digit\n"
               + b"<13>Jan  1 00:00:04 h app: last one without newline")
    with socket.create_connection(("127.0.0.1", r.port("tcp"))) as conn:
        conn.sendall(payload)
    r.wait_for(6)
    r.stop()
    messages = [e["message"] for e in r.events]
    assert messages == ["multi\nline message", "newline framed", "after the huge line",
                        "no PRI, starts with a digit", "last one without newline"]
    assert len(r.rejected) == 1 and "longer than the limit" in r.rejected[0].reason
    assert r.receiver.counters.truncated == 1


def test_udp_overflow_is_dropped_and_counted(receiver):
    r = SyslogReceiver([Listener("udp", "127.0.0.1", 0)], queue_size=10)
    r.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(300):
            sock.sendto(f"<13>Jan  1 00:00:00 h app: message {i}".encode(),
                        ("127.0.0.1", r.bound[0][1]))
        deadline = time.monotonic() + 10
        while r.counters.received < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert r.counters.received == 300
        assert len(r.queue) == 10
        assert r.counters.udp_dropped == 290
    finally:
        r.stop()


def test_tcp_pushes_back_instead_of_dropping(receiver):
    r = SyslogReceiver([Listener("tcp", "127.0.0.1", 0)], queue_size=50, flush_seconds=0.05)
    r.start()
    total = 20000
    line = b"<13>Jan  1 00:00:00 h app: " + b"x" * 470 + b"\n"
    done = threading.Event()

    def send() -> None:
        with socket.create_connection(("127.0.0.1", r.bound[0][1])) as conn:
            for _ in range(total // 100):
                conn.sendall(line * 100)
        done.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(1.0)
    # nobody consumes yet: the queue is full and the sender is held back by TCP
    assert len(r.queue) == 50
    assert not done.is_set()
    got = 0
    batches = r.batches()
    deadline = time.monotonic() + 60
    while got < total and time.monotonic() < deadline:
        batch = next(batches)
        got += len(batch.events)
        assert not batch.rejected
    r.stop()
    assert got == total and done.wait(5)
    assert r.counters.udp_dropped == 0 and r.counters.received == total


def _self_signed(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_listener(receiver, tmp_path):
    cert, key = _self_signed(tmp_path)
    r = receiver(Listener("tls", "127.0.0.1", 0, cert, key))
    port = r.port("tls")
    # a client speaking plain text to the TLS port is refused and counted
    with socket.create_connection(("127.0.0.1", port)) as plain:
        plain.sendall(b"<13>Jan  1 00:00:00 h app: not tls\n")
        with contextlib.suppress(ConnectionError):
            while plain.recv(100):
                pass
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as conn:
        msg = b"<86>1 2024-01-01T00:00:00Z h sudo - - - " \
              b"alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id"
        conn.sendall(str(len(msg)).encode() + b" " + msg)
    r.wait_for(2)
    r.stop()
    assert [e["event"]["action"] for e in r.events] == ["sudo"]
    assert r.events[0]["user"]["name"] == "alice"
    assert r.receiver.counters.by_protocol["tls"] >= 1
    assert r.receiver.counters.tls_failures == 1
    assert "TLS handshake failed" in r.rejected[0].reason


def test_port_in_use_is_a_clear_error():
    from collectors.syslog import SyslogError

    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = SyslogReceiver([Listener("tcp", "127.0.0.1", busy.getsockname()[1])])
        with pytest.raises(SyslogError, match="cannot listen on tcp"):
            r.start()
    finally:
        busy.close()


def test_kernel_socket_drops_are_counted_too():
    r = SyslogReceiver([Listener("udp", "127.0.0.1", 0)], udp_buffer_bytes=4096, queue_size=5)
    r.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 20000
        for _ in range(sent):
            sock.sendto(b"<13>Jan  1 00:00:00 h app: " + b"x" * 200, ("127.0.0.1", r.bound[0][1]))
        deadline = time.monotonic() + 10
        c = r.counters
        while c.received + c.udp_kernel_dropped < sent * 0.9 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.udp_kernel_dropped > 0
        assert c.received + c.udp_kernel_dropped <= sent
        assert c.received + c.udp_kernel_dropped >= sent * 0.9
    finally:
        r.stop()
