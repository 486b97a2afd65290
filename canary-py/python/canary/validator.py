"""The guide's ``CanaryValidator``: deploy, wait, analyse, act, notify -- in Rust."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _canary
from ._bridge import wait
from .alerts import AlertManager
from .analyzer import CanaryAnalyzer
from .helm import HelmManager
from .policy import RollbackDecision, RollbackPolicy

#: The guide's progressive weights.
DEFAULT_PROGRESSIVE_WEIGHTS = (5, 10, 25, 50)

BusinessCheck = Callable[[str, Dict[str, Any]], Union[bool, Tuple[bool, str], Awaitable[Union[bool, Tuple[bool, str]]]]]
RegionSpec = Union[str, Mapping[str, Any]]


class ValidationResult:
    """The outcome of :meth:`CanaryValidator.validate_canary`.

    Truthy exactly when the canary was promoted; unpacks as ``decision, reasoning = result``;
    ``report`` is the whole JSON report (decision, evidence of every step, actions, timings).
    """

    def __init__(self, report: Dict[str, Any]) -> None:
        self.report: Dict[str, Any] = report
        self.success: bool = bool(report["success"])
        self.outcome: str = report["outcome"]
        self.decision: Optional[RollbackDecision] = RollbackDecision(report["decision"]) if report.get("decision") else None
        evaluation = report.get("evaluation")
        self.reasoning: Dict[str, Any] = evaluation or {
            "decision": None,
            "primary_reason": report["reason"],
            "triggered_conditions": [],
            "comparisons": [],
            "recommendation": "The validation did not reach a decision; see report['failure'].",
        }

    @property
    def reason(self) -> str:
        """The main reason, for people."""
        return str(self.report["reason"])

    def __bool__(self) -> bool:
        return self.success

    def __iter__(self) -> Iterator[Any]:
        return iter((self.decision, self.reasoning))

    def __repr__(self) -> str:
        return f"ValidationResult(outcome={self.outcome!r}, decision={self.decision}, success={self.success})"


class CanaryValidator:
    """Runs the guide's flow: deploy the canary, wait, compare it with production, promote or
    roll back, and notify. If any step fails, the canary is rolled back. Cancelling the task
    that awaits :meth:`validate_canary` rolls the canary back too.

    ``regions`` maps region names to a Prometheus URL (or to ``{"prometheus_url": ...,
    "kube_context": ..., "namespace": ...}``); all regions run concurrently and the canary is
    promoted only if every region proceeds. ``business_check(version, reasoning)`` -- a plain
    function or a coroutine returning ``bool`` or ``(bool, details)`` -- must pass too.
    """

    def __init__(
        self,
        helm_manager: Optional[HelmManager] = None,
        alert_manager: Optional[AlertManager] = None,
        prometheus_url: str = "http://prometheus:9090",
        policy: Optional[RollbackPolicy] = None,
        *,
        analyzer: Optional[CanaryAnalyzer] = None,
        regions: Optional[Mapping[str, RegionSpec]] = None,
        progressive_weights: Optional[Sequence[int]] = None,
        business_check: Optional[BusinessCheck] = None,
        on_manual_review: str = "hold",
        analysis_window_minutes: float = 5,
    ) -> None:
        if on_manual_review not in ("hold", "rollback"):
            raise ValueError("on_manual_review must be 'hold' or 'rollback'")
        if analysis_window_minutes <= 0:
            raise ValueError("analysis_window_minutes must be > 0")
        self.helm_manager = helm_manager or HelmManager()
        self.alert_manager = alert_manager or AlertManager()
        self.prometheus_url = prometheus_url
        self.policy = policy or RollbackPolicy()
        self.analyzer = analyzer or CanaryAnalyzer(prometheus_url)
        self.regions = dict(regions) if regions else None
        self.progressive_weights = list(progressive_weights) if progressive_weights else []
        self.business_check = business_check
        self.on_manual_review = on_manual_review
        self.analysis_window_minutes = analysis_window_minutes

    def _regions(self) -> List[Dict[str, Any]]:
        helm = dict(self.helm_manager._config)
        if not self.regions:
            return [{"name": None, "prometheus": self.analyzer._prometheus_config(self.prometheus_url), "helm": helm}]
        out = []
        for name, spec in self.regions.items():
            spec = {"prometheus_url": spec} if isinstance(spec, str) else dict(spec)
            region_helm = dict(helm)
            for key in ("kube_context", "namespace", "kubeconfig"):
                if key in spec:
                    region_helm[key] = spec[key]
            out.append({"name": name, "prometheus": self.analyzer._prometheus_config(spec["prometheus_url"]), "helm": region_helm})
        return out

    async def validate_canary(
        self,
        version: str,
        production_version: Optional[str] = None,
        values_file: Optional[str] = None,
        wait_time_minutes: float = 10,
        *,
        progressive_weights: Optional[Sequence[int]] = None,
        business_check: Optional[BusinessCheck] = None,
    ) -> ValidationResult:
        """Validates ``version`` against ``production_version`` (default: what production runs).

        ``wait_time_minutes`` is the warm-up before each analysis; the environment variable
        ``CANARY_TIME_SCALE`` multiplies every wait (``0``: no waiting, for tests and dry runs).
        """
        if wait_time_minutes < 0:
            raise ValueError("wait_time_minutes must be >= 0")
        weights = list(progressive_weights) if progressive_weights is not None else self.progressive_weights
        config = {
            "regions": self._regions(),
            **self.policy._config(),
            "validator": {
                "warmup": float(wait_time_minutes) * 60.0,
                "analysis_window": float(self.analysis_window_minutes) * 60.0,
                "progressive_weights": weights,
                "on_manual_review": self.on_manual_review,
            },
            "slack": self.alert_manager._slack_config(),
            "version": version,
            "baseline_version": production_version,
            "values_file": values_file,
        }
        report = await wait(_canary.run_validation(json.dumps(config), business_check or self.business_check))
        return ValidationResult(json.loads(report))
