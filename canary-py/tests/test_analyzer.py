"""CanaryAnalyzer against a real Prometheus with backfilled data."""

import asyncio

import pytest

from canary import CanaryAnalyzer, CanaryMetrics, ConfigError, PrometheusError, fetch_metrics


async def test_fetch_metrics_returns_the_generated_values(prometheus):
    async with CanaryAnalyzer(prometheus.url, default_duration_minutes=5) as analyzer:
        m = await analyzer.fetch_metrics("v1.1.0")
    assert isinstance(m, CanaryMetrics)
    assert m.version == "v1.1.0"
    assert m.request_rate == pytest.approx(10.0, rel=0.05)
    assert m.error_rate == pytest.approx(1.0, rel=1e-6)
    assert m.latency_p99 == pytest.approx(944.444, rel=1e-4)
    assert m.model_confidence == pytest.approx(0.9)
    assert "latency_p99" in m.queries


async def test_compare_versions_fetches_both_at_one_time(prometheus):
    analyzer = CanaryAnalyzer(prometheus.url)
    v1, v2 = await analyzer.compare_versions("v1.0.0", "v1.2.0", duration_minutes=5)
    assert (v1.version, v2.version) == ("v1.0.0", "v1.2.0")
    assert v1.timestamp == v2.timestamp
    assert v2.error_rate == pytest.approx(9.0, rel=1e-6)
    await analyzer.close()


async def test_missing_data_is_none_never_zero(prometheus):
    analyzer = CanaryAnalyzer(prometheus.url)
    absent = await analyzer.fetch_metrics("v9.9.9")
    assert (absent.latency_p99, absent.error_rate, absent.sample_count) == (None, None, None)
    idle = await analyzer.fetch_metrics("v-idle", duration_minutes=5)
    assert idle.latency_p99 is None and idle.sample_count == 0
    assert any("NaN" in w for w in idle.warnings)


async def test_queries_is_a_live_mapping(prometheus):
    analyzer = CanaryAnalyzer(prometheus.url, default_duration_minutes=5)
    before = await analyzer.fetch_metrics("v1.0.0")
    custom_queries = {"request_rate": 'sum(rate(http_requests_total{version="%s",status="200"}[5m]))'}
    analyzer.queries.update(custom_queries)
    assert analyzer.queries["request_rate"] == custom_queries["request_rate"]
    after = await analyzer.fetch_metrics("v1.0.0")
    assert before.request_rate == pytest.approx(50.0, rel=1e-6)
    assert after.request_rate == pytest.approx(49.5, rel=1e-6), "the update changed the next fetch"
    del analyzer.queries["model_confidence"]
    assert "model_confidence" not in analyzer.queries
    assert (await analyzer.fetch_metrics("v1.0.0")).model_confidence is None


async def test_the_guides_custom_queries_are_accepted(prometheus):
    analyzer = CanaryAnalyzer(prometheus.url)
    analyzer.queries.update({
        "latency_p99": 'histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{version="%s"}[5m])) by (le)) * 1000',
        "error_rate": '(sum(rate(http_requests_total{version="%s",status=~"5.."}[5m])) / sum(rate(http_requests_total{version="%s"}[5m]))) * 100',
    })
    m = await analyzer.fetch_metrics("v1.2.0")
    assert m.error_rate == pytest.approx(9.0, rel=1e-6)


def test_broken_templates_fail_at_once():
    analyzer = CanaryAnalyzer("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="latency_p99"):
        analyzer.queries["latency_p99"] = "histogram_quantile(0.99, sum(rate(x{version=\"%s\"}[5m]))"


async def test_an_unreachable_prometheus_is_a_prometheus_error():
    analyzer = CanaryAnalyzer("http://127.0.0.1:9", timeout=1)
    with pytest.raises(PrometheusError, match="could not fetch metrics"):
        await analyzer.fetch_metrics("v1")


async def test_closed_analyzers_refuse_work(prometheus):
    analyzer = CanaryAnalyzer(prometheus.url)
    await analyzer.close()
    with pytest.raises(Exception, match="closed"):
        await analyzer.fetch_metrics("v1.0.0")


async def test_fetch_metrics_convenience(prometheus):
    m = await fetch_metrics("v1.0.0", prometheus_url=prometheus.url, duration_minutes=5)
    assert m.request_rate == pytest.approx(50.0, rel=1e-6)


async def test_cancelling_a_fetch_cancels_it():
    # A listener that never answers: the fetch waits until it is cancelled.
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    analyzer = CanaryAnalyzer(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=30)
    task = asyncio.ensure_future(analyzer.fetch_metrics("v1"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.close()


async def test_timeouts_are_prometheus_errors():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    analyzer = CanaryAnalyzer(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.3)
    with pytest.raises(PrometheusError, match="did not answer"):
        await analyzer.fetch_metrics("v1")
    server.close()
