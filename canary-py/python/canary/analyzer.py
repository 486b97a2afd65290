"""The guide's ``CanaryAnalyzer``: metrics from Prometheus, fetched by the Rust core."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any, Dict, Iterator, Optional, Tuple

from . import _canary
from ._bridge import wait
from ._canary import CanaryMetrics


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


class CanaryAnalyzer:
    """Fetches canary metrics from Prometheus (or Thanos, Mimir, Cortex).

    A metric without data is ``None``, never 0.0. The defaults (``http://prometheus:9090``,
    a 30 s timeout, a 10-minute window) are the Rust core's; ``options`` are the fields of
    ``PrometheusConfig`` (``bearer_token``, ``headers``, ``basic_auth``, ``ca_cert_file``,
    ``insecure_skip_verify``, ``canary_label_template``, ``method``, ``retry``, ...). Use it as
    an async context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        prometheus_url: Optional[str] = None,
        timeout: Optional[float] = None,
        default_duration_minutes: Optional[float] = None,
        **options: Any,
    ) -> None:
        self._adopt(_canary.PrometheusSource(prometheus_url, timeout, default_duration_minutes, **options))

    def _adopt(self, source: _canary.PrometheusSource) -> None:
        self._source = source
        self._queries = QueryMap(source)
        self._closed = False

    @classmethod
    def _over(cls, source: _canary.PrometheusSource) -> "CanaryAnalyzer":
        """An analyzer over a source built in Rust (a config file's)."""
        me = cls.__new__(cls)
        me._adopt(source)
        return me

    @property
    def prometheus_url(self) -> str:
        """The Prometheus URL (credentials redacted)."""
        return self._source.url

    @property
    def timeout(self) -> float:
        """The per-request timeout, in seconds."""
        return self._source.timeout

    @property
    def default_duration_minutes(self) -> float:
        """The analysis window used when none is given."""
        return self._source.default_duration_minutes

    @property
    def queries(self) -> QueryMap:
        """The live query templates (``analyzer.queries.update(custom_queries)`` works)."""
        return self._queries

    @queries.setter
    def queries(self, templates: Dict[str, str]) -> None:
        self._queries.update(templates)

    def _check_open(self) -> None:
        if self._closed:
            raise _canary.CanaryError("the analyzer is closed")

    async def fetch_metrics(
        self, version: str, duration_minutes: Optional[float] = None, *, at: Optional[datetime] = None
    ) -> CanaryMetrics:
        """The metrics of ``version`` over the last ``duration_minutes`` (at ``at``, or now)."""
        self._check_open()
        metrics: CanaryMetrics = await wait(self._source.fetch(version, duration_minutes, at))
        return metrics

    async def compare_versions(
        self, version1: str, version2: str, duration_minutes: Optional[float] = None, *, at: Optional[datetime] = None
    ) -> Tuple[CanaryMetrics, CanaryMetrics]:
        """The metrics of baseline ``version1`` and canary ``version2``, fetched concurrently at
        one time (the reference implementation's parameter names)."""
        self._check_open()
        pair: Tuple[CanaryMetrics, CanaryMetrics] = await wait(
            self._source.fetch_pair(version1, version2, duration_minutes, at)
        )
        return pair

    async def analyze(
        self,
        baseline: str,
        canary: str,
        duration_minutes: Optional[float] = None,
        *,
        at: Optional[datetime] = None,
        judge: Optional[str] = None,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
    ) -> Dict[str, Any]:
        """The data ``canary analyze --output json`` prints: one look at the window with the
        guide's policy; with ``judge`` (``sequential``, ``threshold``, ``flagger``, ``argo``,
        ``kayenta``), the canary's run replayed through that judge from ``since`` (default:
        where its series begin) to ``until`` (or ``at``, or now), as Kayenta's retrospective
        analysis does, with a ``retrospective`` entry (the judge, the span, when it decided,
        its evidence over time). While the judge has not decided, ``decision`` is ``continue``
        (the command's exit 4) and ``comparisons`` shows where each metric stands."""
        self._check_open()
        result: Dict[str, Any] = await wait(
            self._source.analyze(baseline, canary, duration_minutes, at, judge, since, until)
        )
        return result

    async def close(self) -> None:
        """Releases the analyzer; later fetches raise ``CanaryError``."""
        self._closed = True

    async def __aenter__(self) -> "CanaryAnalyzer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


_default: Optional[CanaryAnalyzer] = None


def default_analyzer() -> CanaryAnalyzer:
    """The module-level analyzer (``canary_analyzer``): ``PROMETHEUS_URL`` when set, else the
    default URL. Made on first use, so a bad ``PROMETHEUS_URL`` fails there, not at import."""
    global _default
    if _default is None:
        _default = CanaryAnalyzer(os.environ.get("PROMETHEUS_URL") or None)
    return _default


def __getattr__(name: str) -> Any:
    if name == "canary_analyzer":
        return default_analyzer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def fetch_canary_metrics(
    production_version: str, canary_version: str, duration_minutes: Optional[float] = None
) -> Tuple[CanaryMetrics, CanaryMetrics]:
    """Both arms, from the module-level ``canary_analyzer``, as the reference implementation's
    ``fetch_canary_metrics`` returns them: ``(production_metrics, canary_metrics)``."""
    return await default_analyzer().compare_versions(production_version, canary_version, duration_minutes)


async def fetch_metrics(
    version: str, prometheus_url: Optional[str] = None, duration_minutes: Optional[float] = None
) -> CanaryMetrics:
    """The metrics of one ``version`` from the Prometheus at ``prometheus_url``."""
    async with CanaryAnalyzer(prometheus_url, default_duration_minutes=duration_minutes) as analyzer:
        return await analyzer.fetch_metrics(version)
