"""CanaryValidator end to end: real Prometheus, the fake helm, a loopback Slack."""

import asyncio
import logging

import pytest
from conftest import CHART

from canary import AlertManager, CanaryValidator, HelmManager, RollbackDecision, ValidationResult

VALUES = str(CHART / "values-canary.yaml")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setenv("CANARY_TIME_SCALE", "0")


def validator(prometheus, fake_helm, slack=None, **kw):
    fake_helm.seed("apex-inference", "v1.0.0")
    helm = HelmManager(chart=str(CHART), helm_binary=str(fake_helm.binary))
    alerts = AlertManager(slack.url if slack else None)
    return CanaryValidator(helm, alerts, prometheus.url, **kw)


def ops(fake_helm):
    return [" ".join(a[:2]) for a in fake_helm.operations()]


async def test_a_healthy_canary_is_promoted(prometheus, fake_helm, slack):
    v = validator(prometheus, fake_helm, slack)
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0", values_file=VALUES, wait_time_minutes=15)
    assert isinstance(result, ValidationResult)
    assert result and result.success
    assert result.decision is RollbackDecision.PROCEED
    decision, reasoning = result
    assert decision is RollbackDecision.PROCEED and reasoning["decision"] == "proceed"
    assert result.report["outcome"] == "promoted"
    assert result.report["steps"][0]["waited_seconds"] == 900.0
    assert ops(fake_helm) == ["upgrade --install", "upgrade apex-inference", "uninstall apex-inference-canary"]
    assert slack.bodies[0]["text"].startswith("✅ Canary v1.1.0 promoted")


async def test_a_regressing_canary_is_rolled_back(prometheus, fake_helm, slack):
    v = validator(prometheus, fake_helm, slack)
    result = await v.validate_canary("v1.2.0", production_version="v1.0.0", values_file=VALUES)
    assert not result
    assert result.decision is RollbackDecision.ROLLBACK_AUTO
    assert "error_rate" in result.reasoning["primary_reason"]
    assert ops(fake_helm) == ["upgrade --install", "uninstall apex-inference-canary"]
    assert fake_helm.values("apex-inference")["image"]["tag"] == "v1.0.0"
    assert "Automatic rollback triggered for v1.2.0" in slack.bodies[0]["text"]


async def test_a_canary_without_data_is_held_for_review(prometheus, fake_helm):
    result = await validator(prometheus, fake_helm).validate_canary("v9.9.9", production_version="v1.0.0")
    assert not result
    assert result.decision is RollbackDecision.ROLLBACK_MANUAL
    assert result.reasoning["primary_reason"].startswith("insufficient data")
    assert result.outcome == "held_for_review"


async def test_the_production_version_is_read_from_helm_when_not_given(prometheus, fake_helm):
    result = await validator(prometheus, fake_helm).validate_canary("v1.1.0")
    assert result.report["baseline_version"] == "v1.0.0"
    assert ops(fake_helm)[0] == "get values"


async def test_progressive_weights_step_through(prometheus, fake_helm):
    v = validator(prometheus, fake_helm, progressive_weights=[5, 10, 25, 50])
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert result
    weights = [a[5] for a in fake_helm.operations() if "--reuse-values" in a and a[1] == "apex-inference-canary"]
    assert weights == ["canary.weight=5", "canary.weight=10", "canary.weight=25", "canary.weight=50"]
    assert [s["weight"] for s in result.report["steps"]] == [5, 10, 25, 50]


async def test_every_region_must_proceed(prometheus, fake_helm):
    regions = {"eu": {"prometheus_url": prometheus.url, "namespace": "default"}, "us": prometheus.url}
    v = validator(prometheus, fake_helm, regions=regions)
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert result
    assert sorted(s["region"] for s in result.report["steps"]) == ["eu", "us"]
    bad = await v.validate_canary("v1.2.0", production_version="v1.0.0")
    assert not bad and bad.decision is RollbackDecision.ROLLBACK_AUTO


async def test_a_plain_business_check_can_send_a_good_canary_to_review(prometheus, fake_helm):
    seen = []

    def conversion_ok(version, reasoning):
        seen.append((version, reasoning["decision"]))
        return (False, "conversion -3%")

    v = validator(prometheus, fake_helm, business_check=conversion_ok)
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert seen == [("v1.1.0", "proceed")]
    assert result.decision is RollbackDecision.ROLLBACK_MANUAL
    assert "conversion -3%" in result.reason
    assert result.report["business_check"]["passed"] is False


async def test_an_async_business_check_is_awaited(prometheus, fake_helm):
    async def ab_test(version, reasoning):
        await asyncio.sleep(0.01)
        return True

    result = await validator(prometheus, fake_helm).validate_canary("v1.1.0", production_version="v1.0.0", business_check=ab_test)
    assert result and result.report["business_check"]["name"] == "ab_test"


async def test_a_failing_business_check_rolls_back(prometheus, fake_helm):
    def broken(version, reasoning):
        raise RuntimeError("experiment service down")

    result = await validator(prometheus, fake_helm, business_check=broken).validate_canary("v1.1.0", production_version="v1.0.0")
    assert not result and result.outcome == "failed"
    assert "experiment service down" in result.reason
    assert ops(fake_helm)[-1] == "uninstall apex-inference-canary"


async def test_the_guides_ab_snippet_unpacks_the_result(prometheus, fake_helm):
    v = validator(prometheus, fake_helm)
    tech_decision, _ = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert tech_decision == RollbackDecision.PROCEED


async def test_cancelling_the_task_rolls_the_canary_back(prometheus, fake_helm, monkeypatch):
    monkeypatch.setenv("CANARY_TIME_SCALE", "1")
    v = validator(prometheus, fake_helm)
    task = asyncio.ensure_future(v.validate_canary("v1.1.0", production_version="v1.0.0", wait_time_minutes=10))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if "upgrade --install" in ops(fake_helm):
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The rollback finished before the cancellation reached the caller.
    assert ops(fake_helm) == ["upgrade --install", "uninstall apex-inference-canary"]


async def test_a_timeout_cancels_and_rolls_back(prometheus, fake_helm, monkeypatch):
    monkeypatch.setenv("CANARY_TIME_SCALE", "1")
    v = validator(prometheus, fake_helm)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(v.validate_canary("v1.1.0", production_version="v1.0.0", wait_time_minutes=10), timeout=1.0)
    assert ops(fake_helm)[-1] == "uninstall apex-inference-canary"


async def test_bad_input_is_a_value_error_before_anything_runs(prometheus, fake_helm):
    v = validator(prometheus, fake_helm)
    with pytest.raises(ValueError, match="invalid version"):
        await v.validate_canary("v1,canary.enabled=false")
    with pytest.raises(ValueError):
        await v.validate_canary("v1.1.0", wait_time_minutes=-1)
    with pytest.raises(ValueError):
        CanaryValidator(on_manual_review="ignore")
    assert fake_helm.operations() == []


async def test_rust_logs_reach_python_logging(prometheus, fake_helm, slack, caplog):
    with caplog.at_level(logging.INFO, logger="canary"):
        await validator(prometheus, fake_helm, slack).validate_canary("v1.2.0", production_version="v1.0.0")
    names = {r.name for r in caplog.records}
    assert names == {"canary"}, names
    assert "validation finished" in caplog.text
    assert "XXXXSECRET" not in caplog.text


def test_judges_are_importable_and_checked():
    from canary import ThresholdJudge

    judge = ThresholdJudge(warmup_minutes=5, window_minutes=2)
    assert judge.name == "threshold"
    assert (judge.parameters["warmup"], judge.parameters["window"]) == (300.0, 120.0)
    assert judge.parameters["policy"]["thresholds"]["latency_p99_threshold"] == 1.5
    with pytest.raises(ValueError, match="window"):
        ThresholdJudge(window_minutes=0)
    with pytest.raises(TypeError):
        CanaryValidator(judge="threshold")
    with pytest.raises(ValueError, match="max_duration"):
        CanaryValidator(judge=ThresholdJudge(), max_duration_minutes=100_000)


def test_peer_judges_take_their_parameters_by_name_and_refuse_unknown_ones():
    from canary import ArgoJudge, FlaggerJudge, KayentaJudge

    flagger = FlaggerJudge(threshold=1, interval=30)
    assert flagger.name == "flagger"
    assert (flagger.parameters["threshold"], flagger.parameters["interval"]) == (1, 30.0)
    assert flagger.parameters["min_success_rate_percent"] == 99.0, "the rest are the defaults"
    assert ArgoJudge().parameters["consecutive_error_limit"] == 4
    kayenta = KayentaJudge(confidence_level=0.95)
    assert kayenta.name == "kayenta"
    assert [m["name"] for m in kayenta.parameters["metrics"]] == ["latency_p99", "error_rate", "model_confidence"]
    with pytest.raises(ValueError, match="thresold"):
        FlaggerJudge(thresold=1)
    with pytest.raises(ValueError, match="confidence level"):
        KayentaJudge(confidence_level=1.5)
    with pytest.raises(ValueError):
        ArgoJudge(count=0)
    CanaryValidator(judge=kayenta)


def test_the_sequential_judge_takes_its_parameters_by_name():
    from canary import SequentialJudge

    judge = SequentialJudge(alpha=0.01, warmup=120)
    assert judge.name == "sequential"
    p = judge.parameters
    assert (p["alpha"], p["warmup"], p["max_duration"]) == (0.01, 120.0, 3600.0)
    kinds = [(m["kind"], m["name"], m["critical"]) for m in p["metrics"]]
    assert kinds == [
        ("latency", "latency", True),
        ("count", "error_rate", True),
        ("gauge", "model_confidence", False),
    ]
    with pytest.raises(ValueError, match="alpha"):
        SequentialJudge(alpha=0.9)
    with pytest.raises(ValueError, match="alhpa"):
        SequentialJudge(alhpa=0.01)
    # What matters, per metric: a ratio in the metric's worse direction.
    strict = SequentialJudge(matters={"error_rate": 1.5, "model_confidence": 0.9})
    assert strict.parameters["matters"] == {"error_rate": 1.5, "model_confidence": 0.9}
    with pytest.raises(ValueError, match="matters.error_rate"):
        SequentialJudge(matters={"error_rate": 0.5})
    CanaryValidator(judge=judge)


async def test_the_sequential_judge_runs_the_validation(prometheus, fake_helm):
    # The run's data all lies before it starts: no observation after the warm-up, so at the
    # maximum duration it is manual review, never a promotion.
    from canary import SequentialJudge

    v = validator(prometheus, fake_helm, judge=SequentialJudge(alpha=0.01), max_duration_minutes=10)
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert not result
    assert result.decision is RollbackDecision.ROLLBACK_MANUAL
    assert result.reasoning["primary_reason"].startswith("insufficient data")


async def test_a_peer_judge_runs_the_validation(prometheus, fake_helm):
    # A canary that never reports (the store has no series of v1.9.0; one whose data ends
    # just before the run may still show through the store's lookback at one step): the run,
    # with Flagger's judge as with any other, asks a person, saying why.
    from canary import FlaggerJudge

    v = validator(prometheus, fake_helm, judge=FlaggerJudge(), max_duration_minutes=10)
    result = await v.validate_canary("v1.9.0", production_version="v1.0.0")
    assert not result
    assert result.decision is RollbackDecision.ROLLBACK_MANUAL
    assert "the canary has no series since" in result.reasoning["primary_reason"]
    assert result.report["steps"][-1]["judge"] == "flagger"
    assert "upgrade apex-inference" not in ops(fake_helm), "nothing was promoted"


async def test_a_judged_validation_without_new_evidence_is_held_for_review(prometheus, fake_helm):
    # The canary's data all lies before the run starts: a judge fed observations from the start
    # never sees enough, and at the maximum duration it asks a person, never promotes.
    from canary import ThresholdJudge

    v = validator(prometheus, fake_helm, judge=ThresholdJudge(), max_duration_minutes=5)
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0")
    assert not result
    assert result.decision is RollbackDecision.ROLLBACK_MANUAL
    assert result.reasoning["primary_reason"].startswith("insufficient data")
    assert result.report["steps"][0]["evaluation"]["decision"] == "rollback_manual"
    assert "upgrade apex-inference" not in ops(fake_helm), "nothing was promoted"


async def test_a_deployed_baseline_is_compared_with_and_removed(prometheus, fake_helm):
    v = validator(prometheus, fake_helm, baseline="deployed")
    result = await v.validate_canary("v1.1.0", production_version="v1.0.0", values_file=VALUES)
    # The test's production series carry no track="baseline": the baseline arm has no data,
    # so the canary is held (never compared with production's pods instead).
    assert result.outcome == "held_for_review", result.reasoning["primary_reason"]
    assert result.report["baseline_arm"] == "deployed"
    installs = [a for a in fake_helm.operations() if a[:2] == ["upgrade", "--install"]]
    assert [a[2] for a in installs] == ["apex-inference-canary", "apex-inference-baseline"]
    assert "image.tag=v1.0.0" in installs[1] and "track=baseline" in installs[1]
    assert ops(fake_helm)[-1] == "uninstall apex-inference-baseline"


async def test_cancelling_removes_the_deployed_baseline_too(prometheus, fake_helm, monkeypatch):
    monkeypatch.setenv("CANARY_TIME_SCALE", "1")
    v = validator(prometheus, fake_helm, baseline="deployed")
    task = asyncio.ensure_future(v.validate_canary("v1.1.0", production_version="v1.0.0", wait_time_minutes=10))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if ops(fake_helm).count("upgrade --install") == 2:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ops(fake_helm) == [
        "upgrade --install",
        "upgrade --install",
        "uninstall apex-inference-canary",
        "uninstall apex-inference-baseline",
    ]


def test_the_baseline_is_production_or_deployed():
    with pytest.raises(ValueError, match="baseline"):
        CanaryValidator(baseline="canary")
    assert CanaryValidator(baseline="production").baseline == "production"
