"""The guide's ``HelmManager``: the canary and production releases, through the helm CLI."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from . import _canary
from ._bridge import wait


class HelmManager:
    """Deploys, shifts, promotes and rolls back with helm (v3 or v4), never through a shell.

    Production is the release ``release_name``; the canary is ``<release_name>-canary``.
    Versions must be valid image tags and are passed with ``--set-string``.
    """

    def __init__(
        self,
        release_name: str = "apex-inference",
        chart: str = "./chart",
        namespace: Optional[str] = None,
        *,
        kube_context: Optional[str] = None,
        kubeconfig: Optional[str] = None,
        helm_binary: str = "helm",
        timeout: float = 300,
        wait: str = "watcher",
        dry_run: bool = False,
        extra_args: Optional[List[str]] = None,
    ) -> None:
        if wait not in ("watcher", "legacy", "none"):
            raise ValueError("wait must be 'watcher', 'legacy' or 'none'")
        self.release_name = release_name
        self.chart = chart
        self.namespace = namespace
        self._config: Dict[str, Any] = {
            "release": release_name,
            "chart": chart,
            "namespace": namespace,
            "kube_context": kube_context,
            "kubeconfig": kubeconfig,
            "helm_binary": helm_binary,
            "timeout": float(timeout),
            "wait": wait,
            "dry_run": dry_run,
            "extra_args": list(extra_args or []),
        }
        self._helm = _canary.HelmDeployer(json.dumps(self._config))

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
        if version is None:
            status = await self.get_deployment_status()
            version = status.get("canary_version")
            if not version:
                raise _canary.HelmError(f"no canary of {self.release_name} is deployed, so there is nothing to promote")
        await wait(self._helm.promote(version))

    async def get_deployment_status(self) -> Dict[str, Any]:
        """Production's and the canary's state, revision and version."""
        return dict(json.loads(await wait(self._helm.status())))

    async def get_production_version(self) -> Optional[str]:
        """The image tag production runs, or ``None``."""
        version: Optional[str] = await wait(self._helm.production_version())
        return version

    @property
    def commands(self) -> List[List[str]]:
        """Every helm command run (or, with ``dry_run``, printed) so far."""
        return [list(c) for c in self._helm.commands()]
