#!/usr/bin/env python3
"""Deploy with canary validation."""

import asyncio
import os
from canary import CanaryValidator, HelmManager, AlertManager

async def main():
    # Configuration
    config = {
        "version": os.getenv("VERSION", "latest"),
        "production_version": os.getenv("PRODUCTION_VERSION", "v1.0.0"),
        "values_file": os.getenv("VALUES_FILE", "values-canary.yaml"),
        "slack_webhook": os.getenv("SLACK_WEBHOOK_URL"),
        "prometheus_url": os.getenv("PROMETHEUS_URL", "http://prometheus:9090")
    }
    
    # Initialize components
    helm = HelmManager()
    alerts = AlertManager(config["slack_webhook"])
    validator = CanaryValidator(helm, alerts, config["prometheus_url"])
    
    # Run validation
    success = await validator.validate_canary(
        version=config["version"],
        production_version=config["production_version"],
        values_file=config["values_file"],
        wait_time_minutes=15
    )
    
    return 0 if success else 1

if __name__ == "__main__":
    exit_code = asyncio.run(main())
    exit(exit_code)
