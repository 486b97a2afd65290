"""HelmManager against the workspace's recording fake helm."""

import pytest
from conftest import CHART

from canary import ConfigError, HelmError, HelmManager


def manager(fake, **kw):
    return HelmManager(chart=str(CHART), helm_binary=str(fake.binary), **kw)


async def test_deploy_weight_promote_and_status(fake_helm):
    fake_helm.seed("apex-inference", "v1.0.0")
    helm = manager(fake_helm)
    assert await helm.get_production_version() == "v1.0.0"
    await helm.deploy_canary("v1.1.0", str(CHART / "values-canary.yaml"))
    await helm.set_canary_weight(25)
    status = await helm.get_deployment_status()
    assert (status["canary"], status["canary_version"]) == ("deployed", "v1.1.0")
    await helm.promote_canary()
    assert await helm.get_production_version() == "v1.1.0"
    ops = fake_helm.operations()
    assert ops[1][:3] == ["upgrade", "--install", "apex-inference-canary"]
    assert "--set-string" in ops[1] and "image.tag=v1.1.0" in ops[1]
    assert ops[2][:6] == ["upgrade", "apex-inference-canary", str(CHART), "--reuse-values", "--set", "canary.weight=25"]
    assert ops[-2][:3] == ["uninstall", "apex-inference-canary", "--ignore-not-found"]
    assert ops[-1][:3] == ["get", "values", "apex-inference"]
    assert helm.commands == ops


async def test_rollback_removes_the_canary_or_rolls_production_back(fake_helm):
    fake_helm.seed("apex-inference", "v1.0.0")
    helm = manager(fake_helm)
    await helm.deploy_canary("v1.1.0")
    await helm.rollback()
    assert (await helm.get_deployment_status())["canary"] == "absent"
    await helm.deploy_canary("v1.1.0")
    await helm.promote_canary()
    assert await helm.rollback_production() == 1
    assert await helm.get_production_version() == "v1.0.0"


async def test_injection_attempts_are_value_errors(fake_helm):
    helm = manager(fake_helm)
    with pytest.raises(ValueError, match="invalid version"):
        await helm.deploy_canary("v1,canary.enabled=false")
    with pytest.raises(ValueError):
        await helm.set_canary_weight(101)
    assert fake_helm.operations() == []
    with pytest.raises(ConfigError):
        HelmManager(release_name="Bad Name")


async def test_helm_failures_are_helm_errors(fake_helm):
    fake_helm.seed("apex-inference", "v1.0.0")
    fake_helm.fail("upgrade", "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
    with pytest.raises(HelmError, match="another helm operation is in progress"):
        await manager(fake_helm).deploy_canary("v1.1.0")


async def test_promote_without_a_canary_is_a_helm_error(fake_helm):
    fake_helm.seed("apex-inference", "v1.0.0")
    with pytest.raises(HelmError, match="nothing to promote"):
        await manager(fake_helm).promote_canary()


async def test_dry_run_runs_nothing(fake_helm):
    helm = manager(fake_helm, dry_run=True)
    await helm.deploy_canary("v1.1.0")
    assert fake_helm.operations() == []
    assert helm.commands[0][:3] == ["upgrade", "--install", "apex-inference-canary"]
