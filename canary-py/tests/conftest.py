"""Test machinery: a real Prometheus with backfilled data, the workspace's fake helm, and a
loopback Slack receiver. Everything runs on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_HELM = ROOT / "testkit" / "src" / "fake_helm" / "helm.py"
OPENMETRICS = ROOT / "target" / "debug" / "openmetrics"
CHART = ROOT / "examples" / "chart"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A real Prometheus on a free port, loaded with traffic through promtool."""

    def __init__(self, traffic: List[Dict[str, Any]], span_s: int = 1200) -> None:
        assert OPENMETRICS.exists(), "run ./scripts/test.sh (it builds testkit's openmetrics)"
        self.dir = tempfile.mkdtemp(prefix="canary-prom-")
        self.end = int(time.time()) - 3
        data = subprocess.run(
            [str(OPENMETRICS), str(span_s), "15", str(self.end), json.dumps(traffic)], check=True, capture_output=True, text=True
        ).stdout
        Path(self.dir, "data.om").write_text(data)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", f"{self.dir}/data.om", f"{self.dir}/data"],
            check=True,
            capture_output=True,
        )
        Path(self.dir, "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.dir}/prometheus.yml",
                f"--storage.tsdb.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=100y",
            ],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(Path(self.dir, "log").read_text())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TRAFFIC = [
    {"version": "v1.0.0", "rps": 50},
    {"version": "v1.1.0", "rps": 10},
    {"version": "v1.2.0", "rps": 10, "error_ratio": 0.09},
    {"version": "v-idle", "rps": 0, "confidence": None},
]


@pytest.fixture(scope="session")
def prometheus():
    p = Prometheus(TRAFFIC)
    yield p
    p.stop()


class FakeHelm:
    """The workspace's recording fake helm (testkit/src/fake_helm/helm.py) in its own dir."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.binary = directory / "helm"
        shutil.copy(FAKE_HELM, self.binary)
        self.binary.chmod(0o755)

    def seed(self, release: str, tag: str, namespace: str = "default") -> None:
        state = {namespace: {release: {"revisions": [{
            "revision": 1, "updated": "2026-11-01T00:00:00Z", "status": "deployed", "chart": "apex-inference-0.1.0",
            "app_version": "1.0.0", "description": "Install complete", "config": {"image": {"tag": tag}, "canary": {"enabled": False}},
        }]}}}
        (self.dir / "state.json").write_text(json.dumps(state))

    def operations(self) -> List[List[str]]:
        path = self.dir / "calls.jsonl"
        calls = [json.loads(line)["argv"] for line in path.read_text().splitlines()] if path.exists() else []
        return [c for c in calls if c[0] != "version"]

    def values(self, release: str, namespace: str = "default") -> Any:
        state = json.loads((self.dir / "state.json").read_text())
        revisions = state.get(namespace, {}).get(release, {}).get("revisions", [])
        deployed = [r for r in revisions if r["status"] == "deployed"]
        return deployed[-1]["config"] if deployed else None

    def fail(self, command: str, stderr: str) -> None:
        (self.dir / "faults.json").write_text(json.dumps([{"command": command, "stderr": stderr, "times": 1}]))

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.dir}:{env['PATH']}"
        return env


@pytest.fixture
def fake_helm(tmp_path):
    return FakeHelm(tmp_path)


class Receiver:
    """A loopback HTTP server that records POSTed JSON bodies and answers `status`."""

    def __init__(self) -> None:
        self.bodies: List[Any] = []
        self.paths: List[str] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(self.rfile.read(length) or b"null"))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXXSECRET"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def slack():
    r = Receiver()
    yield r
    r.stop()


def metrics_kwargs(**overrides: Any) -> Dict[str, Any]:
    """A healthy baseline in the guide's units."""
    base = dict(latency_p50=50.0, latency_p95=200.0, latency_p99=1000.0, error_rate=1.0, model_confidence=0.90,
                request_rate=100.0, sample_count=6000)
    base.update(overrides)
    return base
