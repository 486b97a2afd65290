"""CanaryValidator.from_config: the canary command's config file, read by the same Rust code,
end to end against the real Prometheus, the fake helm and loopback receivers."""

import pytest
from conftest import CHART, ROOT, Receiver

import canary
from canary import CanaryValidator, RollbackDecision


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setenv("CANARY_TIME_SCALE", "0")
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)


def write(tmp_path, text):
    path = tmp_path / "canary.yaml"
    path.write_text(text)
    return path


def config(prometheus, fake_helm, slack, hook, extra=""):
    return (
        f"prometheus:\n  url: {prometheus.url}\n"
        f"helm:\n  chart: {CHART}\n  helm_binary: {fake_helm.binary}\n  namespace: default\n"
        "validator:\n  warmup: 120\n  progressive_weights: [10, 50]\n  on_manual_review: rollback\n"
        "thresholds:\n  error_rate_threshold: 2.5\n"
        f"slack:\n  webhook_url: {slack.url}\n"
        f"webhooks:\n  - name: audit\n    url: {hook.url}\n    payload: evaluation\n" + extra
    )


def test_the_example_loads_with_the_guides_setup():
    v = CanaryValidator.from_config(ROOT / "examples" / "canary.yaml")
    assert v.prometheus_url == "http://prometheus:9090"
    assert (v.helm_manager.release_name, v.helm_manager.namespace) == ("apex-inference", "production")
    assert v.policy.thresholds.latency_p99_threshold == 1.5
    assert v.judge is None and v.progressive_weights is None and v.on_manual_review == "hold"


async def test_a_file_drives_the_whole_flow(prometheus, fake_helm, slack, tmp_path):
    hook = Receiver()
    try:
        fake_helm.seed("apex-inference", "v1.0.0")
        v = CanaryValidator.from_config(write(tmp_path, config(prometheus, fake_helm, slack, hook)))
        assert v.policy.thresholds.error_rate_threshold == 2.5
        assert v.progressive_weights == [10, 50] and v.on_manual_review == "rollback"
        result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
        assert result and result.decision is RollbackDecision.PROCEED, result.reason
        # The file's warm-up and weights, its Slack and its webhook.
        assert [s["weight"] for s in result.report["steps"]] == [10, 50]
        assert {s["waited_seconds"] for s in result.report["steps"]} == {120.0}
        assert slack.bodies and slack.bodies[0]["text"].startswith("✅ Canary v1.1.0 promoted")
        assert hook.bodies and hook.bodies[0]["kind"] == "canary_evaluation"
        # The validator ran the helm manager it exposes.
        assert any(c[:2] == ["upgrade", "--install"] for c in v.helm_manager.commands)
        # A call's own warm-up still wins over the file's.
        again = await v.validate_canary("v1.1.0", production_version="v1.0.0", wait_time_minutes=1)
        assert {s["waited_seconds"] for s in again.report["steps"]} == {60.0}
    finally:
        hook.stop()


async def test_the_judge_and_regions_come_from_the_file(prometheus, fake_helm, slack, tmp_path):
    hook = Receiver()
    try:
        fake_helm.seed("apex-inference", "v1.0.0")
        extra = (
            "judge: sequential\n"
            "sequential:\n  matters:\n    error_rate: 1.5\n"
            f"regions:\n  - name: eu\n  - name: us\n    prometheus_url: {prometheus.url}\n    namespace: default\n"
        )
        v = CanaryValidator.from_config(write(tmp_path, config(prometheus, fake_helm, slack, hook, extra)))
        assert isinstance(v.judge, canary.SequentialJudge)
        # The file's parameters, what matters included, reach the judge.
        assert v.judge.parameters["matters"] == {"error_rate": 1.5}
        assert sorted(v.regions) == ["eu", "us"]
        assert v.regions["eu"]["prometheus_url"] == prometheus.url
        # A canary that never reports (the store has no series of v1.9.0): the run says so,
        # and the file's on_manual_review rolls the canary back in both regions. (A version
        # whose backfilled series end just before the run would be seen through the store's
        # lookback at one step or none, depending on the clock: not a stable scenario.)
        held = await v.validate_canary("v1.9.0", production_version="v1.0.0")
        assert held.decision is RollbackDecision.ROLLBACK_MANUAL, held.reason
        assert "the canary has no series since" in held.reason
        assert held.outcome == "rolled_back"
        assert sorted({s["region"] for s in held.report["steps"]}) == ["eu", "us"]
    finally:
        hook.stop()


@pytest.mark.parametrize(
    "text, names",
    [
        ("prometheus:\n  urll: x\n", "line 2, column 3"),
        ("judge: oracle\n", "judge"),
        ("slack:\n  webhook_url: ${CANARY_PY_TEST_UNSET}\n", "CANARY_PY_TEST_UNSET is not set"),
        ("validator:\n  warmup: 1e308\n", "validator.warmup"),
        ("sequential:\n  matters:\n    error_rate: 0.5\n", "sequential.matters.error_rate"),
    ],
)
def test_a_bad_file_is_one_clear_error(tmp_path, text, names):
    path = write(tmp_path, text)
    with pytest.raises(canary.InvalidInput) as e:
        CanaryValidator.from_config(path)
    assert isinstance(e.value, ValueError)
    assert str(path) in str(e.value) and names in str(e.value)


def test_secrets_from_the_file_stay_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("CANARY_PY_TEST_TOKEN", "tok-s3cret-value")
    v = CanaryValidator.from_config(
        write(tmp_path, "prometheus:\n  url: http://p:9090\n  bearer_token: ${CANARY_PY_TEST_TOKEN}\n")
    )
    assert "tok-s3cret-value" not in repr(v.analyzer._source)
    with pytest.raises(canary.InvalidInput) as e:
        CanaryValidator.from_config(write(tmp_path, "prometheus:\n  url: http://p:9090\n  timeout: ${CANARY_PY_TEST_TOKEN}\n"))
    assert "tok-s3cret-value" not in str(e.value)
