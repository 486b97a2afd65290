"""The guide's decision engine: ``RollbackDecision``, ``RollbackThresholds``, ``RollbackPolicy``
(compiled: the rules, defaults and messages are the Rust core's), ``ComparisonResult``, and the
reference implementation's module-level conveniences."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple

from . import _canary
from ._canary import CanaryMetrics, RollbackPolicy, RollbackThresholds


class RollbackDecision(Enum):
    """What to do with the canary. The values are the Rust core's (checked at import)."""

    PROCEED = _canary.DECISIONS[0]
    ROLLBACK_AUTO = _canary.DECISIONS[1]
    ROLLBACK_MANUAL = _canary.DECISIONS[2]


_canary._register_decisions(RollbackDecision)


@dataclass(frozen=True)
class ComparisonResult:
    """One metric's comparison, with the reference implementation's field names. Each item
    of ``reasoning["comparisons"]`` carries these keys too; :meth:`from_reasoning` reads one."""

    metric_name: str
    baseline_value: Optional[float]
    canary_value: Optional[float]
    ratio: Optional[float]
    change_percent: Optional[float]
    status: str

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict."""
        return asdict(self)

    @classmethod
    def from_reasoning(cls, item: Mapping[str, Any]) -> "ComparisonResult":
        """Reads one item of ``reasoning["comparisons"]``."""
        return cls(
            metric_name=item["metric_name"],
            baseline_value=item["baseline_value"],
            canary_value=item["canary_value"],
            ratio=item["ratio"],
            change_percent=item["change_percent"],
            status=item["status"],
        )


#: The default policy, as the reference implementation's module-level ``rollback_policy``.
rollback_policy = RollbackPolicy()


def evaluate_metrics(
    v1_metrics: CanaryMetrics, v2_metrics: CanaryMetrics, thresholds: Optional[RollbackThresholds] = None
) -> Tuple[RollbackDecision, Dict[str, Any]]:
    """``RollbackPolicy(thresholds).evaluate(v1_metrics, v2_metrics)``: judges metrics you
    already have."""
    decision, reasoning = RollbackPolicy(thresholds).evaluate(v1_metrics, v2_metrics)
    return decision, reasoning


async def evaluate_canary(
    production_version: str,
    canary_version: str,
    duration_minutes: Optional[float] = None,
    thresholds: Optional[RollbackThresholds] = None,
) -> Tuple[RollbackDecision, Dict[str, Any]]:
    """Fetches both versions with the module-level ``canary_analyzer`` and judges them, as the
    reference implementation's ``evaluate_canary`` does. ``duration_minutes`` defaults to the
    analyzer's window (10 minutes)."""
    from .analyzer import fetch_canary_metrics

    v1, v2 = await fetch_canary_metrics(production_version, canary_version, duration_minutes)
    return evaluate_metrics(v1, v2, thresholds)
