"""The guide's deploy script (examples/deploy_canary.py, only the import changed), run as a
subprocess against a real Prometheus, the fake helm on PATH and a loopback Slack."""

import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "examples" / "deploy_canary.py"


def run(fake_helm, prometheus, slack, version):
    fake_helm.seed("apex-inference", "v1.0.0")
    env = fake_helm.env()
    env.update(
        VERSION=version,
        PRODUCTION_VERSION="v1.0.0",
        VALUES_FILE="chart/values-canary.yaml",
        SLACK_WEBHOOK_URL=slack.url,
        PROMETHEUS_URL=prometheus.url,
        CANARY_TIME_SCALE="0",
    )
    # The script's HelmManager() uses ./chart: run it from examples/, where the chart is.
    return subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT / "examples", env=env, capture_output=True, text=True, timeout=120)


def test_the_script_differs_from_the_guide_only_in_its_import():
    guide = ROOT.parent / "shared" / "seed" / "000_b87c0905aa3a6bdc.txt"
    if not guide.exists():
        pytest.skip(f"the guide is not beside this clone ({guide}): only the project's own clone has ../shared/")
    text = guide.read_text()
    start = text.index("#!/usr/bin/env python3")
    end = text.index("    exit(exit_code)") + len("    exit(exit_code)")
    expected = text[start:end].replace("from src.app.deployment import", "from canary import")
    assert SCRIPT.read_text().rstrip("\n") == expected


def test_a_healthy_canary_exits_0_promotes_and_tells_slack(fake_helm, prometheus, slack):
    out = run(fake_helm, prometheus, slack, "v1.1.0")
    assert out.returncode == 0, out.stderr
    ops = [a[:3] for a in fake_helm.operations()]
    assert ops[0] == ["upgrade", "--install", "apex-inference-canary"]
    deploy = fake_helm.operations()[0]
    assert deploy[3:6] == ["./chart", "-f", "chart/values-canary.yaml"]
    assert ["--set-string", "image.tag=v1.1.0"] == deploy[6:8]
    assert ops[1][:2] == ["upgrade", "apex-inference"] and ops[2][0] == "uninstall"
    assert fake_helm.values("apex-inference")["image"]["tag"] == "v1.1.0"
    assert slack.bodies[0]["text"].startswith("✅ Canary v1.1.0 promoted")
    assert slack.paths == ["/services/T000/B000/XXXXSECRET"]


def test_a_regressing_canary_exits_1_rolls_back_and_tells_slack(fake_helm, prometheus, slack):
    out = run(fake_helm, prometheus, slack, "v1.2.0")
    assert out.returncode == 1, out.stderr
    assert [a[0] for a in fake_helm.operations()] == ["upgrade", "uninstall"]
    assert fake_helm.values("apex-inference")["image"]["tag"] == "v1.0.0"
    text = slack.bodies[0]["text"]
    assert text.startswith("🚨 Automatic rollback triggered for v1.2.0")
    assert "error_rate: 9% (was 1%, 9×)" in text
    assert "XXXXSECRET" not in out.stderr + out.stdout
