"""Stubs of the compiled part of the ``canary`` package."""

import os
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, final

from typing_extensions import disjoint_base

__all__ = [
    "backtest",
    "cli_main",
    "ConfigSettings",
    "load_config",
    "CanaryError",
    "CanaryMetrics",
    "ConfigError",
    "DECISIONS",
    "DEFAULT_FLOOR",
    "DEFAULT_PROGRESSIVE_WEIGHTS",
    "Evaluation",
    "HelmDeployer",
    "HelmError",
    "InvalidInput",
    "METRIC_NAMES",
    "NotifyError",
    "Pending",
    "PrometheusError",
    "PrometheusSource",
    "RollbackPolicy",
    "RollbackThresholds",
    "SlackNotifier",
    "ThresholdJudge",
    "FlaggerJudge",
    "ArgoJudge",
    "KayentaJudge",
    "SequentialJudge",
    "_register_decisions",
    "check_validator_options",
    "run_validation",
]

class CanaryError(Exception):
    """Base class of every canary error."""

class InvalidInput(CanaryError, ValueError):
    """A value canary was given is invalid. Also a ValueError."""

class ConfigError(InvalidInput):
    """The configuration is invalid. Also a ValueError."""

class PrometheusError(CanaryError):
    """Prometheus could not answer, or answered badly."""

class HelmError(CanaryError):
    """helm failed."""

class NotifyError(CanaryError):
    """A notification could not be delivered."""

DECISIONS: List[str]
METRIC_NAMES: List[str]
DEFAULT_FLOOR: float
DEFAULT_PROGRESSIVE_WEIGHTS: List[int]

def _register_decisions(cls: Any) -> None: ...

@disjoint_base
class CanaryMetrics:
    """The metrics of one version; a metric not given is None (not measured)."""

    latency_p50: Optional[float]
    latency_p95: Optional[float]
    latency_p99: Optional[float]
    error_rate: Optional[float]
    model_confidence: Optional[float]
    request_rate: Optional[float]
    sample_count: Optional[float]
    timestamp: datetime
    version: str
    custom: Dict[str, float]
    @property
    def queries(self) -> Dict[str, str]: ...
    @property
    def warnings(self) -> List[str]: ...
    def __new__(
        cls,
        latency_p50: Optional[float] = None,
        latency_p95: Optional[float] = None,
        latency_p99: Optional[float] = None,
        error_rate: Optional[float] = None,
        model_confidence: Optional[float] = None,
        request_rate: Optional[float] = None,
        timestamp: Optional[datetime] = None,
        version: Optional[str] = None,
        sample_count: Optional[float] = None,
        *,
        custom: Optional[Mapping[str, float]] = None,
        queries: Optional[Mapping[str, str]] = None,
        warnings: Optional[Sequence[str]] = None,
    ) -> CanaryMetrics: ...
    def to_dict(self) -> Dict[str, Any]: ...
    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> CanaryMetrics: ...
    def __getnewargs_ex__(self) -> Tuple[Tuple[Any, ...], Dict[str, Any]]: ...

@final
class RollbackThresholds:
    """Thresholds of the default policy, as ratios of canary to baseline."""

    def __new__(cls, *args: float, **kwargs: float) -> RollbackThresholds: ...
    @property
    def latency_p99_threshold(self) -> float: ...
    @property
    def error_rate_threshold(self) -> float: ...
    @property
    def confidence_threshold(self) -> float: ...
    @property
    def proceed_tolerance(self) -> float: ...
    @property
    def latency_p95_warning(self) -> float: ...
    @property
    def error_rate_warning(self) -> float: ...
    @property
    def latency_p50_warning(self) -> float: ...
    @property
    def min_sample_count(self) -> float: ...
    @property
    def latency_floor_ms(self) -> float: ...
    @property
    def error_rate_floor_percent(self) -> float: ...
    @property
    def confidence_floor(self) -> float: ...
    def to_dict(self) -> Dict[str, float]: ...
    def __getnewargs_ex__(self) -> Tuple[Tuple[Any, ...], Dict[str, Any]]: ...

@disjoint_base
class RollbackPolicy:
    """Judges a canary against its baseline."""

    def __new__(cls, thresholds: Optional[RollbackThresholds] = None) -> RollbackPolicy: ...
    @property
    def thresholds(self) -> RollbackThresholds: ...
    @property
    def metrics(self) -> List[str]: ...
    def add_metric(
        self,
        name: str,
        *,
        higher_is_better: bool = False,
        critical: bool = False,
        rollback_ratio: Optional[float] = None,
        warning_ratio: Optional[float] = None,
        proceed_tolerance: Optional[float] = None,
        floor: Optional[float] = None,
        unit: Optional[str] = None,
        plausible_range: Optional[Tuple[float, float]] = None,
    ) -> RollbackPolicy: ...
    def without_metric(self, name: str) -> RollbackPolicy: ...
    def evaluate(self, v1_metrics: CanaryMetrics, v2_metrics: CanaryMetrics) -> Tuple[Any, Dict[str, Any]]: ...
    def __reduce__(self) -> Tuple[Any, ...]: ...
    @staticmethod
    def _from_state(state: Any) -> RollbackPolicy: ...

@final
class ThresholdJudge:
    """The guide's policy as a judge fed evidence over time."""

    def __new__(
        cls,
        policy: Optional[RollbackPolicy] = None,
        warmup_minutes: Optional[float] = None,
        window_minutes: Optional[float] = None,
    ) -> ThresholdJudge: ...
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, Any]: ...

@final
class FlaggerJudge:
    """Flagger's canary analysis as a judge: canary-only threshold checks every interval."""

    def __new__(cls, **parameters: Any) -> FlaggerJudge: ...
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, Any]: ...

@final
class ArgoJudge:
    """An Argo Rollouts analysis as a judge: measurements with success and failure conditions."""

    def __new__(cls, **parameters: Any) -> ArgoJudge: ...
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, Any]: ...

@final
class KayentaJudge:
    """Kayenta's NetflixACAJudge: Mann-Whitney per metric, scored by groups, over growing windows."""

    def __new__(cls, **parameters: Any) -> KayentaJudge: ...
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, Any]: ...

@final
class SequentialJudge:
    """The sequential, anytime-valid judge: confidence sequences on counts, latency histograms and gauges, judged at every scrape."""

    def __new__(cls, **parameters: Any) -> SequentialJudge: ...
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, Any]: ...

@final
class Evaluation:
    """The evidence behind a decision."""

    @property
    def decision(self) -> Any: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_markdown(self) -> str: ...

@final
class Pending:
    """A running Rust task."""

    def fileno(self) -> int: ...
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def result(self) -> Any: ...

@final
class PrometheusSource:
    """MetricsSource over Prometheus."""

    def __new__(
        cls,
        url: Optional[str] = None,
        timeout: Optional[float] = None,
        default_duration_minutes: Optional[float] = None,
        **options: Any,
    ) -> PrometheusSource: ...
    def with_url(self, url: str) -> PrometheusSource: ...
    @property
    def url(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def default_duration_minutes(self) -> float: ...
    def fetch(self, version: str, duration_minutes: Optional[float] = None, at: Optional[datetime] = None) -> Pending: ...
    def fetch_pair(
        self, baseline: str, canary: str, duration_minutes: Optional[float] = None, at: Optional[datetime] = None
    ) -> Pending: ...
    def analyze(
        self,
        baseline: str,
        canary: str,
        duration_minutes: Optional[float] = None,
        at: Optional[datetime] = None,
        judge: Optional[str] = None,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
    ) -> Pending: ...
    def queries(self) -> List[Tuple[str, str]]: ...
    def set_query(self, metric: str, template: str) -> None: ...
    def remove_query(self, metric: str) -> None: ...

@final
class HelmDeployer:
    """Deployer over helm."""

    def __new__(
        cls, release: Optional[str] = None, chart: Optional[str] = None, namespace: Optional[str] = None, **options: Any
    ) -> HelmDeployer: ...
    def with_overrides(
        self, kube_context: Optional[str] = None, namespace: Optional[str] = None, kubeconfig: Optional[str] = None
    ) -> HelmDeployer: ...
    @property
    def release(self) -> str: ...
    @property
    def chart(self) -> str: ...
    @property
    def namespace(self) -> Optional[str]: ...
    def deploy_canary(self, version: str, values_file: Optional[str] = None) -> Pending: ...
    def set_canary_weight(self, weight: float) -> Pending: ...
    def promote_canary(self, version: Optional[str] = None) -> Pending: ...
    def rollback_canary(self) -> Pending: ...
    def rollback_production(self, revision: Optional[int] = None) -> Pending: ...
    def status(self) -> Pending: ...
    def production_version(self) -> Pending: ...
    def commands(self) -> List[List[str]]: ...

@final
class SlackNotifier:
    """Slack, best-effort."""

    def __new__(cls, webhook: Optional[str] = None, dashboard_url: Optional[str] = None) -> SlackNotifier: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def dashboard_url(self) -> Optional[str]: ...
    def send_alert(self, message: str, color: str) -> Pending: ...
    def notify_success(self, version: str, reasoning: Optional[Mapping[str, Any] | str] = None) -> Pending: ...
    def notify_manual_review(self, version: str, reasoning: Optional[Mapping[str, Any] | str] = None) -> Pending: ...
    def notify_rollback(
        self,
        version: str,
        v1_metrics: Optional[CanaryMetrics | str] = None,
        v2_metrics: Optional[CanaryMetrics] = None,
        reasoning: Optional[Mapping[str, Any] | str] = None,
    ) -> Pending: ...

def run_validation(
    version: str,
    *,
    regions: Sequence[Tuple[Optional[str], PrometheusSource, HelmDeployer]],
    policy: RollbackPolicy,
    slack: Optional[SlackNotifier] = None,
    wait_time_minutes: Optional[float] = None,
    analysis_window_minutes: Optional[float] = None,
    progressive_weights: Optional[Sequence[int]] = None,
    on_manual_review: Optional[str] = None,
    production_version: Optional[str] = None,
    values_file: Optional[str] = None,
    business_check: Optional[Any] = None,
    judge: Optional[Union[ThresholdJudge, FlaggerJudge, ArgoJudge, KayentaJudge, SequentialJudge]] = None,
    max_duration_minutes: Optional[float] = None,
    settings: Optional[ConfigSettings] = None,
    baseline: Optional[str] = None,
) -> Pending: ...
@final
class ConfigSettings:
    def __repr__(self) -> str: ...

def load_config(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]: ...
def check_validator_options(
    analysis_window_minutes: Optional[float] = None,
    progressive_weights: Optional[Sequence[int]] = None,
    on_manual_review: Optional[str] = None,
    max_duration_minutes: Optional[float] = None,
    baseline: Optional[str] = None,
) -> None: ...
def _stop_logging() -> None: ...

def backtest(
    version: str,
    since: Union[str, datetime],
    *,
    until: Optional[datetime] = None,
    prometheus_url: Optional[str] = None,
    config: Optional[Union[str, "os.PathLike[str]"]] = None,
    judges: Optional[Sequence[str]] = None,
    canary_pods: int = 1,
    runs: int = 500,
    seed: int = 7,
    inject: Optional[str] = None,
    calibrate: Optional[float] = None,
    max_false_rollback: Optional[float] = None,
) -> Dict[str, Any]:
    """`canary backtest`: the judges replayed over pseudo-canary runs cut from `version`'s own
    history (A/A), with `inject`'s regressions, the `max_false_rollback` gate and `calibrate`'s
    held-out calibration; returns the data `canary backtest --output json` prints. The GIL is
    released while it runs."""
    ...

def cli_main(argv: List[str]) -> int:
    """Runs the `canary` command line `argv` (the first item is the program's name) and returns
    its exit code. The GIL is released while it runs."""
    ...
