"""CanaryMetrics, RollbackDecision, RollbackThresholds, RollbackPolicy: the guide's examples."""

from datetime import datetime, timezone

import pytest
from conftest import metrics_kwargs

from canary import CanaryMetrics, RollbackDecision, RollbackPolicy, RollbackThresholds, evaluate_metrics


def pair(**canary):
    return CanaryMetrics(version="v1", **metrics_kwargs()), CanaryMetrics(version="v2", **metrics_kwargs(**canary))


def decide(**canary):
    return RollbackPolicy().evaluate(*pair(**canary))[0]


def test_p99_from_1000_to_1600_rolls_back_automatically():
    decision, reasoning = RollbackPolicy().evaluate(*pair(latency_p99=1600.0))
    assert decision is RollbackDecision.ROLLBACK_AUTO
    p99 = next(c for c in reasoning["comparisons"] if c["metric"] == "latency_p99")
    assert (p99["baseline"], p99["canary"], p99["ratio"], p99["rollback_threshold"]) == (1000.0, 1600.0, 1.6, 1.5)


def test_error_rate_from_1_to_2_5_rolls_back_automatically():
    assert decide(error_rate=2.5) is RollbackDecision.ROLLBACK_AUTO


def test_confidence_from_0_90_to_0_70_rolls_back_automatically():
    assert decide(model_confidence=0.70) is RollbackDecision.ROLLBACK_AUTO


def test_everything_within_ten_percent_proceeds():
    assert decide(latency_p99=1090.0, error_rate=1.05, model_confidence=0.85, request_rate=10.0) is RollbackDecision.PROCEED


def test_p99_up_20_with_error_rate_up_80_needs_manual_review():
    assert decide(latency_p99=1200.0, error_rate=1.8) is RollbackDecision.ROLLBACK_MANUAL


def test_custom_threshold_1_3_rolls_back_p99_up_40():
    thresholds = RollbackThresholds(latency_p99_threshold=1.3, error_rate_threshold=1.5, confidence_threshold=0.85, proceed_tolerance=1.05)
    assert RollbackPolicy(thresholds).evaluate(*pair(latency_p99=1400.0))[0] is RollbackDecision.ROLLBACK_AUTO
    assert decide(latency_p99=1400.0) is RollbackDecision.ROLLBACK_MANUAL


def test_reasoning_has_the_guides_keys():
    decision, reasoning = evaluate_metrics(*pair())
    assert decision is RollbackDecision.PROCEED
    for key in ("decision", "primary_reason", "triggered_conditions", "comparisons", "recommendation"):
        assert key in reasoning
    assert reasoning["decision"] == "proceed"
    assert isinstance(reasoning["comparisons"], list) and isinstance(reasoning["comparisons"][0], dict)
    assert isinstance(reasoning, dict)


def test_missing_data_is_never_zero_and_never_proceeds():
    b, c = pair()
    c.latency_p99 = None
    decision, reasoning = RollbackPolicy().evaluate(b, c)
    assert decision is RollbackDecision.ROLLBACK_MANUAL
    assert reasoning["primary_reason"].startswith("insufficient data")
    b, c = pair(sample_count=20)
    assert RollbackPolicy().evaluate(b, c)[1]["primary_reason"].startswith("insufficient data")


def test_decisions_have_the_guides_values_and_compare_and_hash():
    assert [d.value for d in RollbackDecision] == ["proceed", "rollback_auto", "rollback_manual"]
    assert RollbackDecision("proceed") == RollbackDecision.PROCEED
    assert len({RollbackDecision.PROCEED, RollbackDecision.PROCEED}) == 1


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(latency_p99_threshold=1.0), "must be > 1.0"),
        (dict(error_rate_threshold=0.5), "must be > 1.0"),
        (dict(proceed_tolerance=1.0), "must be > 1.0"),
        (dict(confidence_threshold=1.5), "between 0 and 1"),
        (dict(confidence_threshold=0.0), "between 0 and 1"),
    ],
)
def test_invalid_thresholds_raise_value_error(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        RollbackThresholds(**kwargs)


def test_thresholds_have_the_guides_defaults():
    t = RollbackThresholds()
    assert (t.latency_p99_threshold, t.error_rate_threshold, t.confidence_threshold, t.proceed_tolerance) == (1.5, 2.0, 0.8, 1.1)
    with pytest.raises(TypeError):
        RollbackThresholds(latency_p99_threshold="1.5")


def test_omitted_metrics_are_none_and_round_trip():
    m = CanaryMetrics()
    assert (m.latency_p99, m.error_rate, m.sample_count, m.version) == (None, None, None, "")
    assert m.timestamp.tzinfo is not None
    m = CanaryMetrics(version="v2", **metrics_kwargs())
    d = m.to_dict()
    assert isinstance(d["timestamp"], str)
    assert CanaryMetrics.from_dict(d) == m
    assert "latency_p99=1000.0" in repr(m)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(latency_p99=-1.0), ValueError),
        (dict(error_rate=101.0), ValueError),
        (dict(model_confidence=1.2), ValueError),
        (dict(latency_p50=float("nan")), ValueError),
        (dict(sample_count=-5), ValueError),
        (dict(latency_p99="fast"), TypeError),
        (dict(timestamp=datetime(2026, 1, 1)), ValueError),
    ],
)
def test_impossible_metrics_are_refused(kwargs, error):
    with pytest.raises(error):
        CanaryMetrics(**kwargs)


def test_user_metrics_are_judged_like_built_ins():
    policy = RollbackPolicy().add_metric("conversion", higher_is_better=True, critical=True, rollback_ratio=0.9, floor=0.001)
    b = CanaryMetrics(version="v1", custom={"conversion": 3.0}, **metrics_kwargs())
    c = CanaryMetrics(version="v2", custom={"conversion": 2.5}, **metrics_kwargs())
    decision, reasoning = policy.evaluate(b, c)
    assert decision is RollbackDecision.ROLLBACK_AUTO
    assert reasoning["triggered_conditions"][0]["metric"] == "conversion"
    with pytest.raises(Exception):
        RollbackPolicy().add_metric("bad", critical=False, rollback_ratio=2.0)


def test_evaluate_works_without_an_event_loop():
    # A plain function, callable from synchronous deploy scripts.
    assert decide() is RollbackDecision.PROCEED


def test_wrong_argument_types_are_type_errors():
    with pytest.raises(TypeError):
        RollbackPolicy().evaluate({"latency_p99": 1}, CanaryMetrics())
    with pytest.raises(TypeError):
        RollbackPolicy(thresholds={"latency_p99_threshold": 1.3})
