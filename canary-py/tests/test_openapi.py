"""`canary serve` against its own contract: schemathesis fuzzes the running service, on a real
Prometheus, from the OpenAPI document it serves. Every response must match the document (status,
content type, headers, body), no 5xx may come back, and a request outside the document (a wrong
type, a missing version, a wrong method, no token) must be refused. Bounded in examples and time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port

CANARY = ROOT / "target" / "debug" / "canary"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKEN = "schemathesis-token-0123456789"


@pytest.fixture
def service(prometheus, tmp_path):
    if not CANARY.exists():
        pytest.skip("run ./scripts/test.sh: it builds target/debug/canary")
    port = free_port()
    config = tmp_path / "canary.yaml"
    config.write_text(
        f"prometheus:\n  url: {prometheus.url}\n"
        f"serve:\n  listen: 127.0.0.1:{port}\n  auth_token: ${{CANARY_TEST_TOKEN}}\n"
    )
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [str(CANARY), "serve", "--config", str(config)],
        env={**os.environ, "CANARY_TEST_TOKEN": TOKEN},
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=1).status == 200:
                break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError((tmp_path / "serve.log").read_text())
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_the_served_document_is_the_committed_one(service):
    served = json.load(urllib.request.urlopen(f"{service}/openapi.json", timeout=5))
    committed = json.loads((ROOT / "docs" / "src" / "reference" / "openapi.json").read_text())
    assert served == committed
    assert served["openapi"].startswith("3.1")
    assert {"/v1/analysis", "/v1/flagger/gate", "/openapi.json"} <= set(served["paths"])


def test_schemathesis_finds_nothing(service, tmp_path):
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{service}/openapi.json",
            "--checks",
            "all",
            # A schema-valid window or instant can still be out of range (a window over 31
            # days, an instant before the data): the schema cannot state those bounds, and the
            # service refuses them with a 400 that names the bound.
            "--exclude-checks",
            "positive_data_acceptance",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--max-examples",
            "100",
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # It tested every operation of the document, in every phase.
    assert "Tested: 8" in result.stdout, result.stdout[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert f"✅ {phase}" in result.stdout, result.stdout[-3000:]
