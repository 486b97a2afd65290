"""The guide's decision engine: ``RollbackDecision``, ``RollbackThresholds``, ``RollbackPolicy``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Dict, List, Optional, Tuple

from . import _canary
from .metrics import CanaryMetrics


class RollbackDecision(Enum):
    """What to do with the canary."""

    PROCEED = "proceed"
    ROLLBACK_AUTO = "rollback_auto"
    ROLLBACK_MANUAL = "rollback_manual"


@dataclass(frozen=True)
class RollbackThresholds:
    """Thresholds of the default policy, as ratios of canary to baseline; the guide's defaults.

    Invalid values raise ``ValueError`` naming the field ("must be > 1.0", "between 0 and 1").
    The floors decide zero baselines: ratios are taken against ``max(baseline, floor)``.
    """

    latency_p99_threshold: float = 1.5
    error_rate_threshold: float = 2.0
    confidence_threshold: float = 0.8
    proceed_tolerance: float = 1.1
    latency_p95_warning: float = 1.3
    latency_p50_warning: float = 1.3
    error_rate_warning: float = 1.5
    min_sample_count: float = 100
    latency_floor_ms: float = 1.0
    error_rate_floor_percent: float = 0.5
    confidence_floor: float = 0.01

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        _canary.validate_thresholds(json.dumps(asdict(self)))


class RollbackPolicy:
    """Evaluates a canary against its baseline. See the README for the rules and their order."""

    def __init__(self, thresholds: Optional[RollbackThresholds] = None) -> None:
        if thresholds is not None and not isinstance(thresholds, RollbackThresholds):
            raise TypeError("thresholds must be a RollbackThresholds")
        self.thresholds = thresholds or RollbackThresholds()
        self._extra: List[Dict[str, Any]] = []
        self._without: List[str] = []
        # The thresholds are frozen: serialize them once, not on every evaluate().
        self._thresholds_text = json.dumps(asdict(self.thresholds))
        self._extra_text = "[]"

    def add_metric(
        self,
        name: str,
        *,
        higher_is_better: bool = False,
        critical: bool = False,
        rollback_ratio: Optional[float] = None,
        warning_ratio: Optional[float] = None,
        proceed_tolerance: Optional[float] = None,
        floor: float = 1e-9,
        unit: str = "",
    ) -> "RollbackPolicy":
        """Judges a metric of your own (a business KPI), exactly like a built-in one.

        Its values come from ``CanaryMetrics.custom[name]``. Returns the policy, for chaining.
        """
        spec = {
            "name": name,
            "unit": unit,
            "direction": "higher_is_better" if higher_is_better else "lower_is_better",
            "criticality": "critical" if critical else "non_critical",
            "rollback_ratio": rollback_ratio,
            "warning_ratio": warning_ratio,
            "proceed_tolerance": proceed_tolerance,
            "floor": floor,
        }
        # Checked now, so a bad spec fails where it is written.
        candidate = json.dumps(self._extra + [spec])
        _canary.evaluate(_EMPTY, _EMPTY, self._thresholds_text, candidate, [])
        self._extra.append(spec)
        self._extra_text = candidate
        return self

    def without_metric(self, name: str) -> "RollbackPolicy":
        """Stops judging a metric, e.g. ``model_confidence`` for a service without a model."""
        self._without.append(name)
        return self

    def _config(self) -> Dict[str, Any]:
        return {"thresholds": asdict(self.thresholds), "extra_metrics": self._extra, "without_metrics": self._without}

    def evaluate(self, v1_metrics: CanaryMetrics, v2_metrics: CanaryMetrics) -> Tuple[RollbackDecision, Dict[str, Any]]:
        """Judges ``v2_metrics`` (canary) against ``v1_metrics`` (baseline).

        Returns ``(decision, reasoning)``; ``reasoning`` has the keys ``decision``,
        ``primary_reason``, ``triggered_conditions``, ``comparisons`` (one dict per metric, with
        baseline, canary, ratio, threshold and query) and ``recommendation``. Synchronous: no
        event loop needed.
        """
        for arg, value in (("v1_metrics", v1_metrics), ("v2_metrics", v2_metrics)):
            if not isinstance(value, CanaryMetrics):
                raise TypeError(f"{arg} must be CanaryMetrics, not {type(value).__name__}")
        reasoning = json.loads(
            _canary.evaluate(
                json.dumps(v1_metrics._to_core()),
                json.dumps(v2_metrics._to_core()),
                self._thresholds_text,
                self._extra_text,
                list(self._without),
            )
        )
        return RollbackDecision(reasoning["decision"]), reasoning


_EMPTY = json.dumps(CanaryMetrics(sample_count=None)._to_core())


def evaluate_canary(
    v1_metrics: CanaryMetrics, v2_metrics: CanaryMetrics, thresholds: Optional[RollbackThresholds] = None
) -> Tuple[RollbackDecision, Dict[str, Any]]:
    """``RollbackPolicy(thresholds).evaluate(v1_metrics, v2_metrics)``."""
    return RollbackPolicy(thresholds).evaluate(v1_metrics, v2_metrics)
