"""The guide's ``CanaryMetrics``: what was measured about one version."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from . import _canary

# The guide's field names, and the Rust core's names (which carry their units).
_FIELDS = {
    "latency_p50": "latency_p50_ms",
    "latency_p95": "latency_p95_ms",
    "latency_p99": "latency_p99_ms",
    "error_rate": "error_rate_percent",
    "model_confidence": "model_confidence",
    "request_rate": "request_rate_rps",
    "sample_count": "sample_count",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CanaryMetrics:
    """The metrics of one version over an analysis window.

    Latencies are in milliseconds, ``error_rate`` in percent (0-100), ``model_confidence``
    in 0-1 and ``request_rate`` in requests per second. A metric that could not be measured
    (no series, no traffic, a NaN quantile) is ``None`` -- never 0.0 -- and the policy treats
    it as insufficient data. The defaults (0.0) are the guide's, for metrics built by hand.
    """

    latency_p50: Optional[float] = 0.0
    latency_p95: Optional[float] = 0.0
    latency_p99: Optional[float] = 0.0
    error_rate: Optional[float] = 0.0
    model_confidence: Optional[float] = 0.0
    request_rate: Optional[float] = 0.0
    sample_count: Optional[int] = 0
    timestamp: datetime = field(default_factory=_now)
    version: str = ""
    custom: Dict[str, float] = field(default_factory=dict)
    queries: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    warnings: List[str] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
        if not isinstance(self.version, str):
            raise TypeError(f"version must be a str, not {type(self.version).__name__}")
        if not isinstance(self.timestamp, datetime):
            raise TypeError("timestamp must be a datetime")
        if self.timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(timezone.utc))")
        _canary.validate_metrics(json.dumps(self._to_core()))

    def to_dict(self) -> Dict[str, Any]:
        """The metrics with the guide's names; the timestamp as an ISO 8601 string."""
        out: Dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        out["timestamp"] = self.timestamp.isoformat()
        out["version"] = self.version
        out["custom"] = dict(self.custom)
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CanaryMetrics":
        """Reads what :meth:`to_dict` wrote. Unknown keys are refused."""
        known = set(_FIELDS) | {"timestamp", "version", "custom"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CanaryMetrics fields: {sorted(unknown)}")
        kwargs = dict(data)
        if isinstance(kwargs.get("timestamp"), str):
            kwargs["timestamp"] = datetime.fromisoformat(kwargs["timestamp"].replace("Z", "+00:00"))
        return cls(**kwargs)

    def _to_core(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {core: getattr(self, py) for py, core in _FIELDS.items()}
        if out["sample_count"] is not None:
            out["sample_count"] = float(out["sample_count"])
        out["timestamp"] = self.timestamp.astimezone(timezone.utc).isoformat()
        out["version"] = self.version
        out["custom"] = dict(self.custom)
        out["queries"] = dict(self.queries)
        out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def _from_core(cls, data: Dict[str, Any]) -> "CanaryMetrics":
        kwargs: Dict[str, Any] = {py: data.get(core) for py, core in _FIELDS.items()}
        if kwargs["sample_count"] is not None:
            kwargs["sample_count"] = int(round(kwargs["sample_count"]))
        kwargs["timestamp"] = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
        kwargs["version"] = data.get("version", "")
        kwargs["custom"] = dict(data.get("custom") or {})
        kwargs["queries"] = dict(data.get("queries") or {})
        kwargs["warnings"] = list(data.get("warnings") or [])
        return cls(**kwargs)
