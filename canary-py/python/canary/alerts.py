"""The guide's ``AlertManager``: Slack messages, best-effort. The texts are the Rust core's."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from . import _canary
from ._bridge import wait
from ._canary import CanaryMetrics


class AlertManager:
    """Sends Slack messages. Without a webhook it only logs. Delivery is best-effort: every
    method returns ``True`` when Slack accepted the message and ``False`` otherwise (the error
    is logged on the ``canary`` logger). The webhook URL never appears in ``repr``, logs or
    errors.
    """

    def __init__(self, slack_webhook_url: Optional[str] = None, dashboard_url: Optional[str] = None) -> None:
        self._slack = _canary.SlackNotifier(slack_webhook_url or None, dashboard_url)

    @classmethod
    def _over(cls, slack: _canary.SlackNotifier) -> "AlertManager":
        """An alert manager over a notifier built in Rust (a config file's)."""
        me = cls.__new__(cls)
        me._slack = slack
        return me

    @property
    def enabled(self) -> bool:
        """Whether a webhook is configured."""
        return self._slack.enabled

    @property
    def dashboard_url(self) -> Optional[str]:
        """The dashboard messages link to."""
        return self._slack.dashboard_url

    def __repr__(self) -> str:
        return f"AlertManager({self._slack!r})"

    async def send_alert(self, message: str, color: str = "danger") -> bool:
        """Posts ``message`` as a Slack attachment of ``color`` (good, warning, danger, #hex)."""
        return bool(await wait(self._slack.send_alert(message, color)))

    async def notify_success(self, version: str, reasoning: Optional[Mapping[str, Any]] = None) -> bool:
        """Announces a promotion."""
        return bool(await wait(self._slack.notify_success(version, reasoning)))

    async def notify_rollback(
        self,
        version: str,
        v1_metrics: Union[CanaryMetrics, str, None] = None,
        v2_metrics: Optional[CanaryMetrics] = None,
        reasoning: Union[Mapping[str, Any], str, None] = None,
    ) -> bool:
        """Announces a rollback with the guide's "enhanced alert message". As in the reference
        implementation, ``notify_rollback(version, reason)`` with the reason as a ``str`` works
        too."""
        return bool(await wait(self._slack.notify_rollback(version, v1_metrics, v2_metrics, reasoning)))

    async def notify_manual_review(self, version: str, reasoning: Union[Mapping[str, Any], str, None] = None) -> bool:
        """Asks a person to review the canary."""
        return bool(await wait(self._slack.notify_manual_review(version, reasoning)))
