"""``canary.backtest(...)`` and ``CanaryAnalyzer.analyze(..., judge=...)`` on a real Prometheus
holding four hours of a three-pod production (one pod with more errors) and a canary: the
same data as the command's JSON output, and every mistake a named exception."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import canary
from canary import CanaryAnalyzer
from conftest import Prometheus

SPAN_S = 4 * 3600


@pytest.fixture(scope="module")
def pods():
    p = Prometheus(
        [
            {"version": "v5", "rps": 20, "pod": "p0"},
            {"version": "v5", "rps": 20, "pod": "p1"},
            {"version": "v5", "rps": 20, "pod": "p2", "error_ratio": 0.03},
            {"version": "v6", "rps": 10, "pod": "c0", "error_ratio": 0.08},
        ],
        span_s=SPAN_S,
    )
    yield p
    p.stop()


def bounds(p: Prometheus):
    until = datetime.fromtimestamp(p.end, tz=timezone.utc)
    return until - timedelta(seconds=SPAN_S - 60), until


def cli_json(*args: str):
    script = Path(sys.executable).parent / "canary"
    out = subprocess.run([str(script), *args, "--output", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1, 2), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_backtest_returns_what_the_command_prints(pods):
    since, until = bounds(pods)
    got = canary.backtest(
        "v5",
        since,
        until=until,
        prometheus_url=pods.url,
        judges=["threshold", "sequential"],
        runs=30,
        inject="errors*2",
        max_false_rollback=0.5,
    )
    code, want = cli_json(
        "backtest", "--prometheus-url", pods.url, "--version", "v5", "--since", since.isoformat(),
        "--until", until.isoformat(), "--judge", "threshold,sequential", "--runs", "30",
        "--inject", "errors*2", "--max-false-rollback", "0.5",
    )
    assert got == want
    assert sorted(got["pods"]) == ["p0", "p1", "p2"]
    assert [j["judge"] for j in got["judges"]] == ["threshold", "sequential"]
    # No config: the command's default judge, sequential, is the configured one and is gated.
    assert [j["configured"] for j in got["judges"]] == [False, True]
    # The pod with three times the errors is the pseudo-canary in about a third of the runs:
    # the guide's policy rolls those back.
    threshold = got["judges"][0]["healthy"]["false_rollback"]
    assert 3 <= threshold["count"] <= 20, threshold
    assert got["gate"]["judge"] == "sequential"
    assert got["gate"]["passed"] == (code == 0)
    assert got["judges"][1]["injected"][0]["injection"] == "errors*2"


def test_backtest_span_and_calibration(pods):
    _, until = bounds(pods)
    got = canary.backtest(
        "v5", "3h", until=until, prometheus_url=pods.url, judges=["threshold"], runs=40, calibrate=0.2
    )
    assert got["calibrations"][0]["judge"] == "threshold"
    snippet = got["config_snippets"]["threshold"]
    assert snippet.startswith("judge: threshold\nthresholds:\n"), snippet


def test_backtest_mistakes_are_named(pods):
    _, until = bounds(pods)
    with pytest.raises(canary.InvalidInput, match="14x"):
        canary.backtest("v5", "14x", prometheus_url=pods.url)
    with pytest.raises(ValueError, match="not one of threshold"):
        canary.backtest("v5", "3h", until=until, prometheus_url=pods.url, judges=["nope"])
    with pytest.raises(canary.InvalidInput, match="strictly between 0 and 1"):
        canary.backtest("v5", "3h", until=until, prometheus_url=pods.url, calibrate=2.0)
    with pytest.raises(canary.InvalidInput, match="prometheus_url"):
        canary.backtest("v5", "3h")
    with pytest.raises(canary.InvalidInput):
        canary.backtest('v5"} or vector(1)', "3h", prometheus_url=pods.url)
    with pytest.raises(canary.CanaryError, match="v-none"):
        canary.backtest("v-none", "3h", until=until, prometheus_url=pods.url)
    # The canary's version alone is one pod: no split possible.
    with pytest.raises(canary.CanaryError, match="pod"):
        canary.backtest("v6", "3h", until=until, prometheus_url=pods.url)
    with pytest.raises(canary.PrometheusError):
        canary.backtest("v5", "3h", until=until, prometheus_url="http://127.0.0.1:9", runs=5)


async def test_analyze_with_a_judge_is_the_commands_retrospective(pods):
    _, until = bounds(pods)
    start = until - timedelta(hours=2)
    end = start + timedelta(hours=1)
    async with CanaryAnalyzer(pods.url) as analyzer:
        got = await analyzer.analyze("v5", "v6", judge="sequential", since=start, until=end)
        once = await analyzer.analyze("v5", "v6", 5, at=end)
        with pytest.raises(canary.InvalidInput, match="need a judge"):
            await analyzer.analyze("v5", "v6", since=start)
        with pytest.raises(canary.InvalidInput, match="not one of"):
            await analyzer.analyze("v5", "v6", judge="best", since=start)
    code, want = cli_json(
        "analyze", "--prometheus-url", pods.url, "--baseline", "v5", "--canary", "v6", "--judge",
        "sequential", "--since", start.isoformat(), "--until", end.isoformat(),
    )
    assert got == want
    assert got["retrospective"]["judge"] == "sequential"
    assert got["decision"] == "rollback_auto", got["primary_reason"]
    assert code == 1
    code, want = cli_json(
        "analyze", "--prometheus-url", pods.url, "--baseline", "v5", "--canary", "v6", "--window", "5m",
        "--at", end.isoformat(),
    )
    assert once == want
    assert "retrospective" not in once
