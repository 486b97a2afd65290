"""canary: decide whether a canary deployment may be promoted -- and act on it.

The guide's API, backed by a Rust core::

    from canary import CanaryValidator, HelmManager, AlertManager

Missing data is never 0.0: a metric without data is ``None``, and the decision says
"insufficient data". ``CANARY_TIME_SCALE`` multiplies every wait (``0``: no waiting).
"""

from ._canary import CanaryError, ConfigError, HelmError, NotifyError, PrometheusError
from .alerts import AlertManager
from .analyzer import CanaryAnalyzer, QueryMap, fetch_canary_metrics
from .helm import HelmManager
from .metrics import CanaryMetrics
from .policy import RollbackDecision, RollbackPolicy, RollbackThresholds, evaluate_canary
from .validator import DEFAULT_PROGRESSIVE_WEIGHTS, CanaryValidator, ValidationResult

__all__ = [
    "AlertManager",
    "CanaryAnalyzer",
    "CanaryError",
    "CanaryMetrics",
    "CanaryValidator",
    "ConfigError",
    "DEFAULT_PROGRESSIVE_WEIGHTS",
    "HelmError",
    "HelmManager",
    "NotifyError",
    "PrometheusError",
    "QueryMap",
    "RollbackDecision",
    "RollbackPolicy",
    "RollbackThresholds",
    "ValidationResult",
    "evaluate_canary",
    "fetch_canary_metrics",
]
