"""One regression test per class of defect the hardening issue names: no false PROCEED from
Python, one source of truth under the API, and code written for the reference runs as is."""

import http.server
import json
import math
import time
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from conftest import CHART, metrics_kwargs

import canary
from canary import (
    CanaryAnalyzer,
    CanaryError,
    CanaryMetrics,
    CanaryValidator,
    ComparisonResult,
    HelmManager,
    InvalidInput,
    RollbackDecision,
    RollbackPolicy,
    RollbackThresholds,
    evaluate_canary,
    fetch_canary_metrics,
)

# --- 1. no false PROCEED, whatever the input -----------------------------------------------


@pytest.mark.parametrize("bad", ["", " ", "\t", 'v1"} or vector(1) or {x="', "v1,canary.enabled=false"])
async def test_blank_or_hostile_versions_are_refused_before_any_query(bad):
    # Nothing listens on port 9: a refusal must come from the version check, not the network.
    analyzer = CanaryAnalyzer("http://127.0.0.1:9", timeout=0.2)
    with pytest.raises(InvalidInput, match="invalid version"):
        await analyzer.compare_versions("v1", bad)
    with pytest.raises(ValueError, match="invalid version"):
        await analyzer.fetch_metrics(bad)
    with pytest.raises(ValueError, match="invalid version"):
        await HelmManager().deploy_canary(bad)


def test_omitted_metrics_are_no_data_and_never_promote():
    b = CanaryMetrics(latency_p99=300, sample_count=1000, version="v1")
    c = CanaryMetrics(latency_p99=300, sample_count=1000, version="v2")
    assert (b.error_rate, b.model_confidence) == (None, None)
    decision, reasoning = RollbackPolicy().evaluate(b, c)
    assert decision is RollbackDecision.ROLLBACK_MANUAL
    assert "error_rate" in reasoning["primary_reason"]


FIELDS = ["latency_p50", "latency_p95", "latency_p99", "error_rate", "model_confidence", "request_rate", "sample_count"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_built_by_hand_are_refused_naming_the_field(field, value):
    with pytest.raises(InvalidInput, match=field) as info:
        CanaryMetrics(**{field: value})
    assert "line 1 column" not in str(info.value)
    m = CanaryMetrics(**metrics_kwargs())
    before = getattr(m, field)
    with pytest.raises(ValueError, match=field):
        setattr(m, field, value)
    assert getattr(m, field) == before, "a refused value must not stick"


@pytest.mark.parametrize(
    "field, value, bound",
    [("latency_p99", 1e308, "3600000"), ("sample_count", 1e13, "1e12"), ("request_rate", 5e9, "1e9")],
)
def test_absurd_values_are_errors_naming_metric_value_and_bound(field, value, bound):
    with pytest.raises(InvalidInput) as info:
        CanaryMetrics(**metrics_kwargs(**{field: value}))
    text = str(info.value)
    assert field in text and bound in text and len(text) < 300, text


def test_user_metrics_have_configurable_plausible_ranges():
    policy = RollbackPolicy().add_metric("conversion", higher_is_better=True, plausible_range=(0.0, 1.0))
    b = CanaryMetrics(version="v1", custom={"conversion": 0.2}, **metrics_kwargs())
    c = CanaryMetrics(version="v2", custom={"conversion": 7.0}, **metrics_kwargs())
    with pytest.raises(InvalidInput, match="conversion.*between 0 and 1"):
        policy.evaluate(b, c)


class _FakePrometheus:
    """Answers every query with one sample: 99.6 for the sample count, healthy values else."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                value = "99.6" if "increase" in body else ("0.9" if "confidence" in body else "1")
                answer = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [time.time(), value]}]}}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_prometheus() -> Iterator[_FakePrometheus]:
    p = _FakePrometheus()
    yield p
    p.server.shutdown()


async def test_python_sees_exactly_the_numbers_rust_fetched(fake_prometheus):
    v1, v2 = await CanaryAnalyzer(fake_prometheus.url).compare_versions("v1", "v2")
    assert v2.sample_count == 99.6, "rounding to 100 would pass the 100-request minimum"
    decision, reasoning = RollbackPolicy().evaluate(v1, v2)
    assert decision is RollbackDecision.ROLLBACK_MANUAL
    assert reasoning["primary_reason"].startswith("insufficient data")


# --- 3. one source of truth under the Python API ---------------------------------------------


def test_invalid_input_is_a_value_error_and_a_canary_error_shown_as_canary():
    assert issubclass(InvalidInput, ValueError) and issubclass(InvalidInput, CanaryError)
    assert issubclass(canary.ConfigError, ValueError)
    for cls in (CanaryError, InvalidInput, canary.ConfigError, canary.PrometheusError, canary.HelmError, canary.NotifyError):
        assert cls.__module__ == "canary", cls
    with pytest.raises(InvalidInput) as info:
        RollbackThresholds(latency_p99_threshold=0.9)
    assert repr(type(info.value)) == "<class 'canary.InvalidInput'>"


def test_a_misspelt_metric_in_without_metric_is_an_error():
    with pytest.raises(InvalidInput, match="latency_p999"):
        RollbackPolicy().without_metric("latency_p999")
    assert "model_confidence" not in RollbackPolicy().without_metric("model_confidence").metrics


def test_defaults_and_decisions_come_from_rust():
    t = RollbackThresholds()
    assert t.to_dict()["latency_p99_threshold"] == 1.5
    assert [d.value for d in RollbackDecision] == canary._canary.DECISIONS
    assert canary.DEFAULT_PROGRESSIVE_WEIGHTS == (5, 10, 25, 50)
    analyzer = CanaryAnalyzer()
    assert (analyzer.prometheus_url, analyzer.timeout, analyzer.default_duration_minutes) == ("http://prometheus:9090", 30.0, 10.0)
    assert HelmManager().release_name == "apex-inference"


def test_unknown_options_name_themselves():
    with pytest.raises(canary.ConfigError, match="bearer_tokn"):
        CanaryAnalyzer("http://p:9090", bearer_tokn="x")
    with pytest.raises(canary.ConfigError, match="helm_binry"):
        HelmManager(helm_binry="helm")


def test_no_retry_chatter_on_stderr_without_a_logging_configuration():
    code = (
        "import asyncio, canary\n"
        "a = canary.CanaryAnalyzer('http://127.0.0.1:9', timeout=0.2)\n"
        "try:\n"
        "    asyncio.run(a.fetch_metrics('v1'))\n"
        "except canary.PrometheusError:\n"
        "    print('raised')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "raised"
    assert out.stderr == "", out.stderr


async def test_helm_manager_commands_show_what_the_validator_ran(prometheus, fake_helm):
    fake_helm.seed("apex-inference", "v1.0.0")
    helm = HelmManager(chart=str(CHART), helm_binary=str(fake_helm.binary))
    validator = CanaryValidator(helm, None, prometheus.url)
    result = await validator.validate_canary("v1.1.0", production_version="v1.0.0", wait_time_minutes=0)
    assert result.success
    ran = [" ".join(c[:2]) for c in helm.commands if c[0] != "version"]
    assert "upgrade --install" in ran and "uninstall apex-inference-canary" in ran, ran


def test_validator_options_are_checked_by_the_core():
    with pytest.raises(ValueError, match="on_manual_review"):
        CanaryValidator(on_manual_review="ignore")
    with pytest.raises(ValueError, match="progressive_weights"):
        CanaryValidator(progressive_weights=[50, 10])


# --- 4. code written for the reference implementation runs unchanged --------------------------


async def test_the_reference_module_conveniences_have_its_signatures(prometheus, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    monkeypatch.setattr(canary.analyzer, "_default", None)
    decision, reasoning = await evaluate_canary("v1.0.0", "v1.2.0", duration_minutes=5)
    assert decision is RollbackDecision.ROLLBACK_AUTO
    v1, v2 = await fetch_canary_metrics("v1.0.0", "v1.1.0", 5)
    assert (v1.version, v2.version) == ("v1.0.0", "v1.1.0")
    again = await CanaryAnalyzer(prometheus.url).compare_versions(version1="v1.0.0", version2="v1.1.0", duration_minutes=5)
    assert again[1].version == "v1.1.0"
    from canary import canary_analyzer, rollback_policy

    assert canary_analyzer.prometheus_url == prometheus.url
    assert isinstance(rollback_policy, RollbackPolicy)
    decision, reasoning = rollback_policy.evaluate(v1, v2)
    first = ComparisonResult.from_reasoning(reasoning["comparisons"][0])
    assert first.metric_name == reasoning["comparisons"][0]["metric"]
    assert first.to_dict()["baseline_value"] == reasoning["comparisons"][0]["baseline"]


def test_conditions_print_as_their_message_and_keep_their_fields():
    b = CanaryMetrics(version="v1", **metrics_kwargs())
    c = CanaryMetrics(version="v2", **metrics_kwargs(latency_p99=1600.0))
    decision, reasoning = RollbackPolicy().evaluate(b, c)
    lines = [f"- {condition}" for condition in reasoning["triggered_conditions"]]
    assert lines[0].startswith("- latency_p99 went from 1000 ms to 1600 ms"), lines
    first = reasoning["triggered_conditions"][0]
    assert (first.rule, first.metric, first["metric"]) == ("rollback_threshold", "latency_p99", "latency_p99")
    assert json.loads(json.dumps(reasoning))["triggered_conditions"][0] == first.message


def test_a_non_critical_metric_left_out_on_both_sides_does_not_block():
    kw = metrics_kwargs()
    del kw["latency_p50"], kw["latency_p95"]
    b, c = CanaryMetrics(version="v1", **kw), CanaryMetrics(version="v2", **kw)
    decision, reasoning = RollbackPolicy().evaluate(b, c)
    assert decision is RollbackDecision.PROCEED, reasoning["primary_reason"]
    p50 = next(x for x in reasoning["comparisons"] if x["metric"] == "latency_p50")
    assert (p50["status"], p50["no_data_reason"]) == ("no_data", "not measured on either side")
    one_side = CanaryMetrics(version="v2", **metrics_kwargs())
    assert RollbackPolicy().evaluate(b, one_side)[0] is RollbackDecision.ROLLBACK_MANUAL
    del kw["model_confidence"]
    b, c = CanaryMetrics(version="v1", **kw), CanaryMetrics(version="v2", **kw)
    assert RollbackPolicy().evaluate(b, c)[0] is RollbackDecision.ROLLBACK_MANUAL


def test_positional_arguments_mean_what_they_mean_in_the_reference():
    ts = datetime(2026, 11, 28, tzinfo=timezone.utc)
    m = CanaryMetrics(50.0, 200.0, 1000.0, 1.0, 0.9, 100.0, ts, "v1", 6000)
    assert (m.latency_p99, m.version, m.sample_count, m.timestamp) == (1000.0, "v1", 6000, ts)
    t = RollbackThresholds(1.3, 1.5, 0.85, 1.05, 1.2, 1.4)
    assert (t.latency_p95_warning, t.error_rate_warning) == (1.2, 1.4)


def test_the_reasoning_is_a_complete_dict_however_it_is_read():
    b = CanaryMetrics(version="v1", **metrics_kwargs())
    c = CanaryMetrics(version="v2", **metrics_kwargs(error_rate=2.5))
    reasoning = RollbackPolicy().evaluate(b, c)[1]
    as_json = json.loads(json.dumps(reasoning))
    assert set(as_json) >= {"decision", "primary_reason", "triggered_conditions", "comparisons", "recommendation"}
    assert len(as_json["comparisons"]) == 6
    fresh = RollbackPolicy().evaluate(b, c)[1]
    assert dict(fresh) == reasoning == {**fresh}
    assert len(fresh) == len(as_json)


def _code_constants() -> "list[tuple[str, int, object]]":
    """Every literal in the package's code, docstrings and indices left out."""
    import ast
    from pathlib import Path

    found = []
    for path in Path(canary.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = getattr(node, "body", [])
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    docstrings.add(id(body[0].value))
            if isinstance(node, ast.Subscript):
                docstrings.add(id(node.slice))  # an index, not a value
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in docstrings:
                found.append((path.name, node.lineno, node.value))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert "json" not in names, f"{path.name}:{node.lineno} imports json"
    return found


def test_the_python_package_holds_no_copy_of_rust_defaults_or_values():
    rust_values = set(RollbackThresholds().to_dict().values())
    rust_values |= set(canary._canary.DECISIONS) | set(canary._canary.METRIC_NAMES)
    rust_values |= {"http://prometheus:9090", "apex-inference", "./chart", "hold", "rollback", 10, 30, 300}
    rust_values |= set(canary._canary.DEFAULT_PROGRESSIVE_WEIGHTS)
    copies = [(f, line, v) for f, line, v in _code_constants() if not isinstance(v, bool) and v in rust_values]
    assert copies == [], copies


def test_values_copy_and_pickle_whole():
    import copy
    import pickle

    m = CanaryMetrics(version="v2", custom={"conversion": 0.2}, queries={"latency_p99": "q"}, **metrics_kwargs())
    for clone in (copy.copy(m), copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert clone == m and clone.custom == m.custom and clone.queries == m.queries
    t = RollbackThresholds(latency_p99_threshold=1.3)
    assert pickle.loads(pickle.dumps(t)) == t == copy.copy(t)
    p = RollbackPolicy(t).add_metric("conversion", higher_is_better=True, critical=True, rollback_ratio=0.9)
    p.without_metric("model_confidence")
    for clone in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert clone.metrics == p.metrics and clone.thresholds == t
        b = CanaryMetrics(version="v1", custom={"conversion": 3.0}, **metrics_kwargs())
        c = CanaryMetrics(version="v2", custom={"conversion": 2.0}, **metrics_kwargs())
        assert clone.evaluate(b, c)[0] is RollbackDecision.ROLLBACK_AUTO
