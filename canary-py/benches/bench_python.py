"""Speed of the Python API, as ratios against baselines measured in the same run.

- ``RollbackPolicy.evaluate`` per call, against a pure-Python function that applies the
  guide's three ratio rules (p99, error rate, confidence) to the same two objects: the least a
  decision can cost in Python. The goal is at most 10x. Reading the reasoning in full (which
  builds the evidence dicts) is measured too.
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


def three_rules(v1, v2) -> str:
    """The guide's three automatic-rollback ratios, in plain Python: the baseline."""
    if v2.latency_p99 / v1.latency_p99 > 1.5:
        return "rollback_auto"
    if v2.error_rate / v1.error_rate > 2.0:
        return "rollback_auto"
    if v2.model_confidence / v1.model_confidence < 0.8:
        return "rollback_auto"
    return "proceed"


def main() -> None:
    b = CanaryMetrics(version="v1", **metrics_kwargs())
    c = CanaryMetrics(version="v2", **metrics_kwargs(latency_p99=1200.0))
    policy = RollbackPolicy()
    rules = per_call(lambda: three_rules(b, c), 20000)
    evaluate = per_call(lambda: policy.evaluate(b, c), 20000)
    full = per_call(lambda: len(policy.evaluate(b, c)[1]), 5000)
    build = per_call(lambda: CanaryMetrics(version="v2", **metrics_kwargs()), 5000)
    print(f"three ratio rules in Python (baseline): {rules * 1e6:8.2f} µs")
    print(f"RollbackPolicy.evaluate:                {evaluate * 1e6:8.2f} µs  ({evaluate / rules:.1f}× baseline, goal <= 10×; {1 / evaluate:,.0f} calls/s)")
    print(f"evaluate + read the whole reasoning:    {full * 1e6:8.2f} µs  ({full / rules:.1f}× baseline)")
    print(f"build one CanaryMetrics:                {build * 1e6:8.2f} µs  ({build / rules:.1f}× baseline)")

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
