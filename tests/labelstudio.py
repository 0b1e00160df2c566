"""A real Label Studio for tests (its own virtualenv, a data dir copied from a migrated template),
and a fault-injecting HTTP proxy to put in front of it."""

import http.client
import http.server
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bin" / "labelstudio"
TEMPLATE = ROOT / "var" / "labelstudio-template"


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str
    data_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_label_studio(data_dir: Path) -> LabelStudioServer:
    if not (ROOT / ".venv-ls" / "bin" / "label-studio").exists():
        pytest.fail("Label Studio is not installed: `make venv-ls` (make test does it) installs it into .venv-ls.")
    # Sign-up off, as bin/labelstudio always sets it (said again here: the tests depend on it).
    env = {
        **os.environ,
        "LABEL_STUDIO_ENV_FILE": str(data_dir.parent / "labelstudio.env"),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    }
    # Migrate once into the template (≈45 s), on a free port: a running Label Studio may hold 8080.
    made = subprocess.run(
        [SCRIPT, "template", TEMPLATE, str(free_port())], env=env, capture_output=True, text=True, timeout=300
    )
    if made.returncode != 0:
        pytest.fail(f"Label Studio's template data dir could not be made: {made.stdout}\n{made.stderr}")
    port = free_port()
    started = subprocess.run(
        [SCRIPT, "start", data_dir, str(port)], env=env, capture_output=True, text=True, timeout=300
    )
    if started.returncode != 0:
        pytest.fail(f"Label Studio did not start: {started.stdout}\n{started.stderr}")
    credentials = dict(
        line.split("=", 1) for line in (data_dir / "credentials.env").read_text().splitlines() if "=" in line
    )
    return LabelStudioServer(f"http://127.0.0.1:{port}", credentials["LS_ADMIN_TOKEN"], data_dir)


def stop_label_studio(server: LabelStudioServer) -> None:
    subprocess.run([SCRIPT, "stop", server.data_dir], capture_output=True, timeout=60)


@dataclass
class Rule:
    """What to do to the next `times` requests whose method matches and whose path matches `path` (a regex)."""

    method: str
    path: str
    action: str  # fail | forward-then-fail | forward-then-drop | forward-then-stall
    times: int = 1
    hits: int = 0


@dataclass
class Faults:
    """What the proxy does to the next requests: fail (500), fail after forwarding, drop the answer
    after forwarding (Label Studio did the work; the client sees the connection close), stall after
    forwarding (the client times out), or delay."""

    fail_next: int = 0  # answer 500 without forwarding
    fail_after_forwarding: int = 0  # forward (Label Studio does the work), then answer 500
    delay_seconds: float = 0.0
    stall_seconds: float = 5.0  # how long forward-then-stall holds the answer back before closing
    only_paths: tuple[str, ...] = ()  # empty: every path
    rules: list[Rule] = field(default_factory=list)  # checked first
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str, path: str) -> str:
        with self.lock:
            self.seen.append(f"{method} {path}")
            for rule in self.rules:
                if rule.hits < rule.times and rule.method == method and re.search(rule.path, path):
                    rule.hits += 1
                    return rule.action
            if self.only_paths and not any(path.startswith(prefix) for prefix in self.only_paths):
                return "forward"
            if self.fail_next:
                self.fail_next -= 1
                return "fail"
            if self.fail_after_forwarding:
                self.fail_after_forwarding -= 1
                return "forward-then-fail"
            return "forward"


class FaultyProxy:
    """Forwards to Label Studio, injecting the faults set on `.faults`."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.faults = Faults()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                what = proxy.faults.take(self.command, self.path)
                if proxy.faults.delay_seconds:
                    time.sleep(proxy.faults.delay_seconds)
                if what == "fail":
                    return self._reply(500, b'{"detail": "injected fault"}', "application/json")
                upstream_conn = http.client.HTTPConnection(host, int(port), timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream_conn.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream_conn.getresponse()
                data = response.read()
                if what == "forward-then-fail":
                    return self._reply(500, b'{"detail": "injected fault after the work was done"}', "application/json")
                if what in ("forward-then-drop", "forward-then-stall"):
                    if what == "forward-then-stall":
                        time.sleep(proxy.faults.stall_seconds)
                    self.close_connection = True  # no answer at all: the connection just closes
                    return
                passed = [
                    (name, value)
                    for name, value in response.getheaders()
                    if name.lower() not in ("content-type", "content-length", "transfer-encoding", "connection")
                ]  # cookies and redirects too: the browser-like log-in and sign-up go through the proxy
                self._reply(response.status, data, response.getheader("Content-Type") or "application/json", passed)

            def _reply(self, status, data, content_type, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts connections and never answers: counts who tried (a Label Studio that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    @property
    def count(self) -> int:
        return len(self.connections)

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.connections:
            conn.close()
