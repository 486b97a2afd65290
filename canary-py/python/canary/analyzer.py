"""The guide's ``CanaryAnalyzer``: metrics from Prometheus."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any, Dict, Iterator, Optional, Tuple

from . import _canary
from ._bridge import wait
from .metrics import CanaryMetrics


class QueryMap(MutableMapping):  # type: ignore[type-arg]
    """The analyzer's PromQL templates by metric, live: a change applies to the next fetch.

    Templates use ``{version}`` (or the guide's ``%s``) and ``{window}``. A template that does
    not parse raises ``canary.ConfigError`` at once.
    """

    def __init__(self, source: "_canary.PrometheusSource") -> None:
        self._source = source

    def _all(self) -> Dict[str, str]:
        return dict(self._source.queries())

    def __getitem__(self, metric: str) -> str:
        return self._all()[metric]

    def __setitem__(self, metric: str, template: str) -> None:
        if not isinstance(template, str):
            raise TypeError("a query template is a str")
        self._source.set_query(metric, template)

    def __delitem__(self, metric: str) -> None:
        if metric not in self._all():
            raise KeyError(metric)
        self._source.remove_query(metric)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"QueryMap({self._all()!r})"


def _unix(at: Optional[datetime]) -> Optional[float]:
    if at is None:
        return None
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return at.timestamp()


class CanaryAnalyzer:
    """Fetches canary metrics from Prometheus (or Thanos, Mimir, Cortex).

    Unlike a naive implementation, a metric without data is ``None``, never 0.0. Use it as an
    async context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        prometheus_url: str = "http://prometheus:9090",
        timeout: float = 30,
        default_duration_minutes: float = 10,
        *,
        canary_label_template: str = "{version}",
        bearer_token: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        ca_cert_file: Optional[str] = None,
        insecure_skip_verify: bool = False,
    ) -> None:
        if default_duration_minutes <= 0:
            raise ValueError("default_duration_minutes must be > 0")
        self.prometheus_url = prometheus_url
        self.timeout = timeout
        self.default_duration_minutes = default_duration_minutes
        self._config: Dict[str, Any] = {
            "url": prometheus_url,
            "timeout": float(timeout),
            "canary_label_template": canary_label_template,
            "bearer_token": bearer_token,
            "headers": dict(headers or {}),
            "ca_cert_file": ca_cert_file,
            "insecure_skip_verify": insecure_skip_verify,
        }
        self._source = _canary.PrometheusSource(json.dumps(self._config))
        self._queries = QueryMap(self._source)
        self._closed = False

    @property
    def queries(self) -> QueryMap:
        """The live query templates (``analyzer.queries.update(custom_queries)`` works)."""
        return self._queries

    @queries.setter
    def queries(self, templates: Dict[str, str]) -> None:
        self._queries.update(templates)

    def _window(self, duration_minutes: Optional[float]) -> float:
        minutes = self.default_duration_minutes if duration_minutes is None else duration_minutes
        return float(minutes) * 60.0

    def _check_open(self) -> None:
        if self._closed:
            raise _canary.CanaryError("the analyzer is closed")

    async def fetch_metrics(
        self, version: str, duration_minutes: Optional[float] = None, *, at: Optional[datetime] = None
    ) -> CanaryMetrics:
        """The metrics of ``version`` over the last ``duration_minutes`` (at ``at``, or now)."""
        self._check_open()
        data = await wait(self._source.fetch(version, "baseline", self._window(duration_minutes), _unix(at)))
        return CanaryMetrics._from_core(json.loads(data))

    async def compare_versions(
        self, v1: str, v2: str, duration_minutes: Optional[float] = None, *, at: Optional[datetime] = None
    ) -> Tuple[CanaryMetrics, CanaryMetrics]:
        """The metrics of baseline ``v1`` and canary ``v2``, fetched concurrently at one time."""
        self._check_open()
        b, c = await wait(self._source.fetch_pair(v1, v2, self._window(duration_minutes), _unix(at)))
        return CanaryMetrics._from_core(json.loads(b)), CanaryMetrics._from_core(json.loads(c))

    def _prometheus_config(self, url: Optional[str] = None) -> Dict[str, Any]:
        config = dict(self._config)
        config["url"] = url or self.prometheus_url
        config["queries"] = dict(self._queries)
        return config

    async def close(self) -> None:
        """Releases the analyzer; later fetches raise ``CanaryError``."""
        self._closed = True

    async def __aenter__(self) -> "CanaryAnalyzer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def fetch_canary_metrics(
    version: str, prometheus_url: str = "http://prometheus:9090", duration_minutes: float = 10
) -> CanaryMetrics:
    """The metrics of ``version`` from the Prometheus at ``prometheus_url``."""
    async with CanaryAnalyzer(prometheus_url, default_duration_minutes=duration_minutes) as analyzer:
        return await analyzer.fetch_metrics(version)
