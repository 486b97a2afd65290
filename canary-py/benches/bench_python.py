"""Speed of the Python API, as ratios against baselines measured in the same run.

- ``RollbackPolicy.evaluate`` per call, against building one ``CanaryMetrics`` (a pure-Python
  dataclass with validation), the cheapest thing a caller does anyway.
- One ``compare_versions`` (14 queries, concurrent in Rust) against a real Prometheus,
  against one plain ``urllib`` query to the same server.

Run: ``.venv/bin/python canary-py/benches/bench_python.py`` (after ./scripts/test.sh).
"""

import asyncio
import statistics
import sys
import time
import timeit
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TRAFFIC, Prometheus, metrics_kwargs  # noqa: E402

from canary import CanaryAnalyzer, CanaryMetrics, RollbackPolicy  # noqa: E402


def per_call(fn, number):
    runs = timeit.repeat(fn, number=number, repeat=7)
    return statistics.median(runs) / number


def main() -> None:
    b = CanaryMetrics(version="v1", **metrics_kwargs())
    c = CanaryMetrics(version="v2", **metrics_kwargs(latency_p99=1200.0))
    policy = RollbackPolicy()
    build = per_call(lambda: CanaryMetrics(version="v2", **metrics_kwargs()), 2000)
    evaluate = per_call(lambda: policy.evaluate(b, c), 2000)
    print(f"build CanaryMetrics (baseline): {build * 1e6:8.1f} µs")
    print(f"RollbackPolicy.evaluate:        {evaluate * 1e6:8.1f} µs  ({evaluate / build:.2f}× baseline, {1 / evaluate:,.0f} calls/s)")

    prometheus = Prometheus(TRAFFIC)
    try:
        query = 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="v1.1.0"}[5m]))) * 1000'
        data = urllib.parse.urlencode({"query": query, "time": str(prometheus.end)}).encode()

        def raw() -> None:
            urllib.request.urlopen(f"{prometheus.url}/api/v1/query", data).read()

        raw_s = per_call(raw, 20)
        analyzer = CanaryAnalyzer(prometheus.url, default_duration_minutes=5)

        async def rounds(n: int) -> list:
            times = []
            for _ in range(n):
                t = time.perf_counter()
                await analyzer.compare_versions("v1.0.0", "v1.1.0")
                times.append(time.perf_counter() - t)
            return times

        compare = statistics.median(asyncio.run(rounds(40)))
        print(f"one urllib query (baseline):    {raw_s * 1e3:8.2f} ms")
        print(f"compare_versions (14 queries):  {compare * 1e3:8.2f} ms  ({compare / raw_s:.2f}× one query)")
    finally:
        prometheus.stop()


if __name__ == "__main__":
    main()
