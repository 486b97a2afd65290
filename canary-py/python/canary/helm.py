"""The guide's ``HelmManager``: the canary and production releases, through the helm CLI."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from . import _canary
from ._bridge import wait


class HelmManager:
    """Deploys, shifts, promotes and rolls back with helm (v3 or v4), never through a shell.

    Production is the release ``release_name``; the canary is ``<release_name>-canary``.
    Versions must be valid image tags and are passed with ``--set-string``. The defaults
    (``apex-inference``, ``./chart``) are the Rust core's; ``options`` are the fields of
    ``HelmConfig`` (``kube_context``, ``kubeconfig``, ``helm_binary``, ``timeout``, ``wait``,
    ``dry_run``, ``extra_args``, ...).
    """

    def __init__(
        self,
        release_name: Optional[str] = None,
        chart: Optional[str] = None,
        namespace: Optional[str] = None,
        **options: Any,
    ) -> None:
        self._helm = _canary.HelmDeployer(release_name, chart, namespace, **options)

    @classmethod
    def _over(cls, helm: _canary.HelmDeployer) -> "HelmManager":
        """A manager over a deployer built in Rust (a config file's)."""
        me = cls.__new__(cls)
        me._helm = helm
        return me

    @property
    def release_name(self) -> str:
        """The production release."""
        return self._helm.release

    @property
    def chart(self) -> str:
        """The chart."""
        return self._helm.chart

    @property
    def namespace(self) -> Optional[str]:
        """The namespace, if any."""
        return self._helm.namespace

    async def deploy_canary(self, version: str, values_file: Optional[str] = None) -> None:
        """Installs or upgrades the canary release at ``version``."""
        await wait(self._helm.deploy_canary(version, values_file))

    async def set_canary_weight(self, weight: int) -> None:
        """Sends ``weight`` percent of the traffic to the canary."""
        await wait(self._helm.set_canary_weight(weight))

    async def rollback(self, revision: Optional[int] = None) -> None:
        """Without ``revision``, removes the canary; with one, rolls production back to it."""
        if revision is None:
            await wait(self._helm.rollback_canary())
        else:
            await wait(self._helm.rollback_production(revision))

    async def rollback_production(self, revision: Optional[int] = None) -> int:
        """Rolls production back to ``revision``, or to the last deployed one before it."""
        return int(await wait(self._helm.rollback_production(revision)))

    async def promote_canary(self, version: Optional[str] = None) -> None:
        """Makes the canary's version (or ``version``) production and removes the canary."""
        await wait(self._helm.promote_canary(version))

    async def get_deployment_status(self) -> Dict[str, Any]:
        """Production's and the canary's state, revision and version."""
        return dict(await wait(self._helm.status()))

    async def get_production_version(self) -> Optional[str]:
        """The image tag production runs, or ``None``."""
        version: Optional[str] = await wait(self._helm.production_version())
        return version

    @property
    def commands(self) -> List[List[str]]:
        """Every helm command run (or, with ``dry_run``, printed) so far, including those of
        validations that used this manager."""
        return [list(c) for c in self._helm.commands()]
