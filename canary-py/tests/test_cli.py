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
    assert "Exit codes: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error,\n4 continue" in h.stdout


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


def test_a_fresh_virtualenv_gets_the_command_from_the_wheel(tmp_path, prometheus):
    # Build the wheel (reusing the test build), install it into a new virtualenv with nothing
    # else, and run the command from there: no Rust toolchain on PATH.
    root = Path(__file__).resolve().parents[1]
    maturin = Path(sys.executable).parent / "maturin"
    built = subprocess.run(
        [str(maturin), "build", "--profile", "dev", "-q", "-o", str(tmp_path / "dist")],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("canary_py-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path)}
    version = subprocess.run(["canary", "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("canary 0."), version.stderr
    ok = subprocess.run(
        ["canary", "analyze", "--prometheus-url", prometheus.url, "--baseline", "v1.0.0",
         "--canary", "v1.1.0", "--at", str(prometheus.end), "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["decision"] == "proceed"
