"""The guide's ``CanaryValidator``: deploy, wait, analyse, act, notify -- run by the Rust core
over the very objects the analyzer, helm manager and alert manager hold."""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _canary
from ._bridge import wait
from .alerts import AlertManager
from .analyzer import CanaryAnalyzer
from .helm import HelmManager
from ._canary import ArgoJudge, FlaggerJudge, KayentaJudge, RollbackPolicy, SequentialJudge, ThresholdJudge
from .policy import RollbackDecision

#: The guide's progressive weights (the Rust core's).
DEFAULT_PROGRESSIVE_WEIGHTS: Tuple[int, ...] = tuple(_canary.DEFAULT_PROGRESSIVE_WEIGHTS)

BusinessCheck = Callable[[str, Dict[str, Any]], Union[bool, Tuple[bool, str], Awaitable[Union[bool, Tuple[bool, str]]]]]
RegionSpec = Union[str, Mapping[str, Any]]
Judge = Union[ThresholdJudge, FlaggerJudge, ArgoJudge, KayentaJudge, SequentialJudge]


class ValidationResult:
    """The outcome of :meth:`CanaryValidator.validate_canary`.

    Truthy exactly when the canary was promoted; unpacks as ``decision, reasoning = result``;
    ``report`` is the whole report as a dict (decision, evidence of every step, actions,
    timings).
    """

    def __init__(self, report: Dict[str, Any], reasoning: Dict[str, Any]) -> None:
        self.report: Dict[str, Any] = report
        self.reasoning: Dict[str, Any] = reasoning
        self.success: bool = bool(report["success"])
        self.outcome: str = report["outcome"]
        decision = report.get("decision")
        self.decision: Optional[RollbackDecision] = RollbackDecision(decision) if decision else None

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
    "kube_context": ..., "namespace": ..., "kubeconfig": ...}``); all regions run concurrently
    and the canary is promoted only if every region proceeds. ``business_check(version,
    reasoning)`` -- a plain function or a coroutine returning ``bool`` or ``(bool, details)``
    -- must pass too. Defaults (analysis window, what manual review does) are the Rust core's.

    ``judge`` (``ThresholdJudge()``, ``SequentialJudge(alpha=0.01)``, or a peer's:
    ``FlaggerJudge()``, ``ArgoJudge()``, ``KayentaJudge()``) decides from observations over time
    instead of one look after the warm-up: it is fed both arms' evidence every 15 s until it
    decides, or must decide at ``max_duration_minutes`` (60). ``SequentialJudge`` keeps its
    evidence across progressive steps.

    ``baseline="deployed"`` compares the canary with a baseline deployed for the run
    (``<release>-baseline``: production's version at the canary's size and weight, its pods
    labelled ``track=baseline``) instead of production's long-running pods, and removes it at
    the end -- promoted, rolled back, held, failed or cancelled. The default is
    ``"production"``, the guide's.
    """

    def __init__(
        self,
        helm_manager: Optional[HelmManager] = None,
        alert_manager: Optional[AlertManager] = None,
        prometheus_url: Optional[str] = None,
        policy: Optional[RollbackPolicy] = None,
        *,
        analyzer: Optional[CanaryAnalyzer] = None,
        regions: Optional[Mapping[str, RegionSpec]] = None,
        progressive_weights: Optional[Sequence[int]] = None,
        business_check: Optional[BusinessCheck] = None,
        on_manual_review: Optional[str] = None,
        analysis_window_minutes: Optional[float] = None,
        judge: Optional[Judge] = None,
        max_duration_minutes: Optional[float] = None,
        baseline: Optional[str] = None,
    ) -> None:
        _canary.check_validator_options(
            analysis_window_minutes,
            list(progressive_weights or []) or None,
            on_manual_review,
            max_duration_minutes,
            baseline,
        )
        if judge is not None and not isinstance(
            judge, (ThresholdJudge, FlaggerJudge, ArgoJudge, KayentaJudge, SequentialJudge)
        ):
            raise TypeError(
                "judge must be a canary judge: ThresholdJudge, FlaggerJudge, ArgoJudge, KayentaJudge or SequentialJudge"
            )
        self.helm_manager = helm_manager or HelmManager()
        self.alert_manager = alert_manager or AlertManager()
        self.policy = policy or RollbackPolicy()
        self.analyzer = analyzer or CanaryAnalyzer(prometheus_url)
        self.regions = dict(regions) if regions else None
        self.progressive_weights = list(progressive_weights) if progressive_weights else None
        self.business_check = business_check
        self.on_manual_review = on_manual_review
        self.analysis_window_minutes = analysis_window_minutes
        self.judge = judge
        self.max_duration_minutes = max_duration_minutes
        self.baseline = baseline
        self._settings: Optional[_canary.ConfigSettings] = None

    @classmethod
    def from_config(cls, path: Union[str, "os.PathLike[str]"]) -> "CanaryValidator":
        """A validator set up from a ``canary.yaml`` -- the file the ``canary`` command reads,
        checked by the same code (``canary config check``): Prometheus, queries and your own
        metrics, thresholds, the validator (warm-up, window, progressive weights, manual review),
        regions, helm, the judge, and Slack (``SLACK_WEBHOOK_URL`` over the file's), webhooks
        and Alertmanager. A bad file raises :class:`canary.InvalidInput` naming the file, line
        and column. The objects are the usual ones: ``validator.helm_manager.commands`` shows
        what ran.
        """
        parts = _canary.load_config(os.fspath(path))
        validator = cls(
            helm_manager=HelmManager._over(parts["helm"]),
            alert_manager=AlertManager._over(parts["slack"]),
            policy=parts["policy"],
            analyzer=CanaryAnalyzer._over(parts["source"]),
            regions=parts["regions"] or None,
            progressive_weights=parts["progressive_weights"] or None,
            on_manual_review=parts["on_manual_review"],
            analysis_window_minutes=parts["analysis_window_minutes"],
            judge=parts["judge"],
            max_duration_minutes=parts["max_duration_minutes"],
            baseline=parts["baseline"],
        )
        validator._settings = parts["settings"]
        return validator

    @property
    def prometheus_url(self) -> str:
        """The analyzer's Prometheus URL."""
        return self.analyzer.prometheus_url

    def _regions(self) -> List[Tuple[Optional[str], Any, Any]]:
        source, helm = self.analyzer._source, self.helm_manager._helm
        if not self.regions:
            return [(None, source, helm)]
        out: List[Tuple[Optional[str], Any, Any]] = []
        for name, spec in self.regions.items():
            spec = {"prometheus_url": spec} if isinstance(spec, str) else dict(spec)
            region_helm = helm.with_overrides(
                kube_context=spec.get("kube_context"), namespace=spec.get("namespace"), kubeconfig=spec.get("kubeconfig")
            )
            out.append((name, source.with_url(spec["prometheus_url"]), region_helm))
        return out

    async def validate_canary(
        self,
        version: str,
        production_version: Optional[str] = None,
        values_file: Optional[str] = None,
        wait_time_minutes: Optional[float] = None,
        *,
        progressive_weights: Optional[Sequence[int]] = None,
        business_check: Optional[BusinessCheck] = None,
    ) -> ValidationResult:
        """Validates ``version`` against ``production_version`` (default: what production runs).

        ``wait_time_minutes`` is the warm-up before each analysis (default 10); the environment
        variable ``CANARY_TIME_SCALE`` multiplies every wait (``0``: no waiting, for tests and
        dry runs).
        """
        weights = progressive_weights if progressive_weights is not None else self.progressive_weights
        report, reasoning = await wait(
            _canary.run_validation(
                version,
                regions=self._regions(),
                policy=self.policy,
                slack=self.alert_manager._slack,
                wait_time_minutes=wait_time_minutes,
                analysis_window_minutes=self.analysis_window_minutes,
                progressive_weights=list(weights) if weights is not None else None,
                on_manual_review=self.on_manual_review,
                production_version=production_version,
                values_file=values_file,
                business_check=business_check or self.business_check,
                judge=self.judge,
                max_duration_minutes=self.max_duration_minutes,
                settings=self._settings,
                baseline=self.baseline,
            )
        )
        return ValidationResult(report, reasoning)
