"""AlertManager against a loopback Slack receiver."""

import logging

from conftest import metrics_kwargs

from canary import AlertManager, CanaryMetrics


async def test_send_alert_posts_a_coloured_attachment(slack):
    alerts = AlertManager(slack.url)
    assert await alerts.send_alert("deploy <v2> & friends", color="warning") is True
    body = slack.bodies[0]
    assert body["attachments"][0]["color"] == "warning"
    assert body["attachments"][0]["text"] == "deploy &lt;v2&gt; &amp; friends"


async def test_notify_rollback_uses_the_guides_enhanced_message(slack):
    alerts = AlertManager(slack.url, dashboard_url="https://grafana.example/d/canary")
    v1 = CanaryMetrics(version="v1", **metrics_kwargs())
    v2 = CanaryMetrics(version="v2", **metrics_kwargs(latency_p99=1600.0, error_rate=2.5, model_confidence=0.7))
    assert await alerts.notify_rollback("v2", v1, v2, {"primary_reason": "p99 regressed"})
    text = slack.bodies[0]["text"]
    assert text.startswith("🚨 Automatic rollback triggered for v2")
    assert "- P99 Latency: 1600.0ms (was 1000.0ms)" in text
    assert "- Error Rate: 2.50% (was 1.00%)" in text
    assert "- Confidence: 0.70 (was 0.90)" in text
    assert "Dashboard: https://grafana.example/d/canary" in text


async def test_success_and_review_messages(slack):
    alerts = AlertManager(slack.url)
    assert await alerts.notify_success("v2")
    assert await alerts.notify_manual_review("v2", {"primary_reason": "mixed results"})
    assert slack.bodies[0]["attachments"][0]["color"] == "good"
    assert "needs manual review" in slack.bodies[1]["text"]


async def test_without_a_webhook_nothing_is_sent():
    alerts = AlertManager(None)
    assert not alerts.enabled
    assert await alerts.send_alert("hello") is False


async def test_failures_are_best_effort_and_never_leak_the_url(slack, caplog):
    slack.status = 500
    alerts = AlertManager(slack.url)
    with caplog.at_level(logging.DEBUG, logger="canary"):
        assert await alerts.send_alert("hello") is False
    assert "XXXXSECRET" not in repr(alerts)
    assert "XXXXSECRET" not in caplog.text
    assert "not delivered" in caplog.text


async def test_the_reference_implementations_alert_calls_work(slack):
    # Its CI example passes the reason itself, and prints conditions with f"- {condition}".
    alerts = AlertManager(slack.url)
    assert await alerts.notify_rollback("v2", "p99 regressed by 60%")
    assert "Reason: p99 regressed by 60%" in slack.bodies[0]["text"]
    assert await alerts.notify_manual_review("v2", {"primary_reason": "mixed results", "triggered_conditions": []})
    assert "mixed results" in slack.bodies[1]["text"]
    assert await alerts.notify_success("v2")
