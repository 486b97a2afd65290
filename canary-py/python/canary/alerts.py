"""The guide's ``AlertManager``: Slack messages, best-effort."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from . import _canary
from ._bridge import wait
from .metrics import CanaryMetrics

_log = logging.getLogger("canary")


def _fmt(value: Optional[float], unit: str = "", digits: int = 1) -> str:
    return "no data" if value is None else f"{value:.{digits}f}{unit}"


class AlertManager:
    """Sends Slack messages. Without a webhook it only logs. Delivery is best-effort: every
    method returns ``True`` when Slack accepted the message and ``False`` otherwise (the error
    is logged). The webhook URL never appears in ``repr``, logs or errors.
    """

    def __init__(self, slack_webhook_url: Optional[str] = None, dashboard_url: Optional[str] = None) -> None:
        self.dashboard_url = dashboard_url
        self._webhook = slack_webhook_url or None
        self._slack = _canary.SlackNotifier(self._webhook, dashboard_url) if self._webhook else None

    @property
    def enabled(self) -> bool:
        """Whether a webhook is configured."""
        return self._slack is not None

    def __repr__(self) -> str:
        return f"AlertManager(slack_webhook_url={'[redacted]' if self.enabled else None})"

    def _slack_config(self) -> Optional[Dict[str, Any]]:
        if not self._webhook:
            return None
        return {"webhook": self._webhook, "dashboard_url": self.dashboard_url}

    async def send_alert(self, message: str, color: str = "danger") -> bool:
        """Posts ``message`` as a Slack attachment of ``color`` (good, warning, danger, #hex)."""
        if self._slack is None:
            _log.info("no Slack webhook configured; not sent: %s", message)
            return False
        try:
            await wait(self._slack.send_alert(message, color))
            return True
        except _canary.NotifyError as e:
            _log.warning("Slack alert not delivered: %s", e)
            return False

    async def notify_success(self, version: str, reasoning: Optional[Dict[str, Any]] = None) -> bool:
        """Announces a promotion."""
        reason = (reasoning or {}).get("primary_reason", "all checks passed")
        return await self.send_alert(f"✅ Canary {version} promoted\n{reason}", "good")

    async def notify_rollback(
        self,
        version: str,
        v1_metrics: Optional[CanaryMetrics] = None,
        v2_metrics: Optional[CanaryMetrics] = None,
        reasoning: Optional[Dict[str, Any]] = None,
    ) -> bool:
        """Announces a rollback with the guide's "enhanced alert message"."""
        lines = [f"🚨 Automatic rollback triggered for {version}"]
        if reasoning:
            lines.append(f"Reason: {reasoning.get('primary_reason', '')}")
        if v1_metrics is not None and v2_metrics is not None:
            lines += [
                "",
                "Metrics:",
                f"- P99 Latency: {_fmt(v2_metrics.latency_p99, 'ms')} (was {_fmt(v1_metrics.latency_p99, 'ms')})",
                f"- Error Rate: {_fmt(v2_metrics.error_rate, '%', 2)} (was {_fmt(v1_metrics.error_rate, '%', 2)})",
                f"- Confidence: {_fmt(v2_metrics.model_confidence, '', 2)} (was {_fmt(v1_metrics.model_confidence, '', 2)})",
            ]
        lines += ["", "Action: Investigation required"]
        if self.dashboard_url:
            lines.append(f"Dashboard: {self.dashboard_url}")
        return await self.send_alert("\n".join(lines), "danger")

    async def notify_manual_review(self, version: str, reasoning: Optional[Dict[str, Any]] = None) -> bool:
        """Asks a person to review the canary."""
        reason = (reasoning or {}).get("primary_reason", "")
        return await self.send_alert(f"⚠️ Canary {version} needs manual review\n{reason}", "warning")
