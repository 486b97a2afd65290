"""canary: decide whether a canary deployment may be promoted -- and act on it.

The guide's API (the canary integration guide of the apex-inference-service project), backed
by a Rust core::

    from canary import CanaryValidator, HelmManager, AlertManager

Missing data is never 0.0: a metric without data is ``None``, and the decision says
"insufficient data". ``CANARY_TIME_SCALE`` multiplies every wait (``0``: no waiting).
Invalid input raises ``canary.InvalidInput``, which is also a ``ValueError``. The library
logs to the ``canary`` logger and prints nothing unless the application configures logging.
"""

import logging
from typing import Any

from ._canary import (
    CanaryError,
    CanaryMetrics,
    ConfigError,
    Evaluation,
    HelmError,
    InvalidInput,
    NotifyError,
    PrometheusError,
    RollbackPolicy,
    RollbackThresholds,
    ThresholdJudge,
    FlaggerJudge,
    ArgoJudge,
    KayentaJudge,
    SequentialJudge,
    backtest,
)
from ._reasoning import Condition, Reasoning
from .alerts import AlertManager
from .analyzer import CanaryAnalyzer, QueryMap, fetch_canary_metrics, fetch_metrics
from .helm import HelmManager
from .policy import ComparisonResult, RollbackDecision, evaluate_canary, evaluate_metrics, rollback_policy
from .validator import DEFAULT_PROGRESSIVE_WEIGHTS, CanaryValidator, ValidationResult

logging.getLogger("canary").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The module-level analyzer is made on first use (PROMETHEUS_URL is read then).
    if name == "canary_analyzer":
        from .analyzer import default_analyzer

        return default_analyzer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlertManager",
    "CanaryAnalyzer",
    "CanaryError",
    "CanaryMetrics",
    "CanaryValidator",
    "ComparisonResult",
    "Condition",
    "ConfigError",
    "DEFAULT_PROGRESSIVE_WEIGHTS",
    "Evaluation",
    "HelmError",
    "HelmManager",
    "InvalidInput",
    "NotifyError",
    "PrometheusError",
    "QueryMap",
    "Reasoning",
    "RollbackDecision",
    "RollbackPolicy",
    "RollbackThresholds",
    "ThresholdJudge",
    "FlaggerJudge",
    "ArgoJudge",
    "KayentaJudge",
    "SequentialJudge",
    "ValidationResult",
    "backtest",
    "canary_analyzer",
    "evaluate_canary",
    "evaluate_metrics",
    "fetch_canary_metrics",
    "fetch_metrics",
    "rollback_policy",
]
