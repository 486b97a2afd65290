"""The ``canary`` console script the wheel installs: the Rust command, run from Python's
virtualenv with no Rust toolchain involved."""

import json
import subprocess
import sys
from pathlib import Path


def canary(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "canary"
    assert script.exists(), f"the wheel installs a console script at {script}"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)


def test_version_and_help():
    v = canary("--version")
    assert v.returncode == 0
    assert v.stdout.startswith("canary 0."), v.stdout
    h = canary("analyze", "--help")
    assert h.returncode == 0
    assert "Exit codes: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error." in h.stdout


def test_analyze_from_the_virtualenv(prometheus):
    base = ["analyze", "--prometheus-url", prometheus.url, "--baseline", "v1.0.0", "--at", str(prometheus.end)]
    ok = canary(*base, "--canary", "v1.1.0", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["decision"] == "proceed"
    bad = canary(*base, "--canary", "v1.2.0")
    assert bad.returncode == 1, bad.stderr
    assert "ROLLBACK_AUTO" in bad.stdout
    wrong = canary(*base, "--canary", "v1.1.0", "--window", "5 minutes")
    assert wrong.returncode == 3
    assert wrong.stderr.count("\n") == 1 and "not a duration" in wrong.stderr, wrong.stderr
