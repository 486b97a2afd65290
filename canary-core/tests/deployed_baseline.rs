//! `validator.baseline: deployed`: a baseline of production's version is deployed next to the
//! canary and removed at every end (promoted, rolled back, held, failed, cancelled), and the
//! report says which arm the canary was compared with.

use std::sync::Arc;
use std::time::Duration;

use canary_core::test_util::{
    healthy_metrics, DeployerCall, DeployerOp, ManualClock, RecordingDeployer, RecordingNotifier,
    ScriptedSource,
};
use canary_core::{
    BaselineArm, CanaryValidator, Outcome, RollbackTarget, SystemClock, ValidationReport,
    ValidationRequest, ValidatorConfig, Version,
};
use DeployerCall::*;

struct Rig {
    source: Arc<ScriptedSource>,
    deployer: Arc<RecordingDeployer>,
}

impl Rig {
    fn new(canary_p99_ms: f64) -> Self {
        let source = Arc::new(ScriptedSource::new());
        source.set("v1", healthy_metrics("v1"));
        source.set(
            "v2",
            healthy_metrics("v2").with_latency_p99_ms(canary_p99_ms),
        );
        Rig {
            source,
            deployer: Arc::new(RecordingDeployer::with_production("v1")),
        }
    }

    fn validator(&self) -> CanaryValidator {
        let config = ValidatorConfig {
            baseline: BaselineArm::Deployed,
            ..ValidatorConfig::default()
        };
        CanaryValidator::new(self.source.clone(), self.deployer.clone())
            .with_notifier(Arc::new(RecordingNotifier::new("recorder")))
            .with_clock(Arc::new(ManualClock::default()))
            .with_config(config)
            .unwrap()
    }
}

fn request() -> ValidationRequest {
    ValidationRequest::new(Version::new("v2").unwrap()).with_values_file("values-canary.yaml")
}

fn deploy(version: &str) -> DeployerCall {
    DeployCanary {
        version: version.into(),
        values_file: Some("values-canary.yaml".into()),
    }
}

fn baseline(version: &str) -> DeployerCall {
    DeployBaseline {
        version: version.into(),
        values_file: Some("values-canary.yaml".into()),
    }
}

fn action_lines(report: &ValidationReport) -> Vec<String> {
    report.actions.iter().map(|a| a.action.describe()).collect()
}

#[tokio::test]
async fn a_promotion_deploys_production_s_version_as_the_baseline_and_removes_it() {
    let rig = Rig::new(320.0);
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            baseline("v1"),
            Promote("v2".into()),
            RemoveBaseline
        ]
    );
    assert_eq!(rig.deployer.baseline(), None, "nothing left behind");
    assert_eq!(report.baseline_arm, BaselineArm::Deployed);
    assert!(
        report.to_markdown().contains("deployed baseline"),
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        action_lines(&report)[2..],
        [
            "deployed baseline v1",
            "promoted v2 to production",
            "removed the baseline"
        ]
    );
    assert!(report.to_json().contains("\"baseline_arm\": \"deployed\""));
}

#[tokio::test]
async fn a_rollback_and_a_hold_remove_the_baseline_too() {
    let rig = Rig::new(320.0 * 1.6);
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
    assert_eq!(
        rig.deployer.calls()[3..],
        [Rollback(RollbackTarget::Canary), RemoveBaseline]
    );
    // A warning-level regression: held for a person, the baseline still goes.
    let rig = Rig::new(320.0 * 1.3);
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::HeldForReview, "{}", report.reason);
    assert_eq!(rig.deployer.calls().last(), Some(&RemoveBaseline));
    assert_eq!(rig.deployer.baseline(), None);
}

#[tokio::test]
async fn a_failed_baseline_deploy_rolls_the_canary_back_and_removes_what_it_left() {
    let rig = Rig::new(320.0);
    rig.deployer
        .fail_on(DeployerOp::DeployBaseline, "UPGRADE FAILED: quota exceeded");
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.failure.as_ref().unwrap().step, "deploy the baseline");
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            baseline("v1"),
            Rollback(RollbackTarget::Canary),
            RemoveBaseline
        ]
    );
    assert!(
        rig.source.calls().is_empty(),
        "no analysis without a baseline"
    );
}

#[tokio::test]
async fn a_baseline_that_cannot_be_removed_is_said_with_what_to_do() {
    let rig = Rig::new(320.0);
    rig.deployer
        .fail_on(DeployerOp::RemoveBaseline, "uninstall: cluster unreachable");
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted, "the promotion stands");
    assert!(
        report.reason.contains("removing the baseline failed")
            && report.reason.contains("cluster unreachable")
            && report.reason.contains("by hand"),
        "{}",
        report.reason
    );
    assert!(!report.actions.last().unwrap().ok);
}

#[tokio::test(start_paused = true)]
async fn cancellation_removes_the_baseline_with_the_canary() {
    let rig = Rig::new(320.0);
    let config = ValidatorConfig {
        baseline: BaselineArm::Deployed,
        ..ValidatorConfig::default()
    };
    let validator = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_clock(Arc::new(SystemClock))
        .with_config(config)
        .unwrap();
    let cancel = tokio::time::sleep(Duration::from_secs(300));
    let report = validator.validate_until(request(), cancel).await;
    assert_eq!(report.outcome, Outcome::Cancelled, "{}", report.reason);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            baseline("v1"),
            Rollback(RollbackTarget::Canary),
            RemoveBaseline
        ]
    );
}

#[tokio::test]
async fn by_default_no_baseline_is_deployed() {
    let rig = Rig::new(320.0);
    let report = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_clock(Arc::new(ManualClock::default()))
        .validate(request())
        .await;
    assert_eq!(report.baseline_arm, BaselineArm::Production);
    assert!(!rig
        .deployer
        .calls()
        .iter()
        .any(|c| matches!(c, DeployBaseline { .. } | RemoveBaseline)));
}

#[tokio::test]
async fn the_recording_deployer_passes_the_baseline_conformance_suite() {
    let d = RecordingDeployer::with_production("v1");
    canary_core::test_util::conformance::deployer_baseline(&d, &Version::new("v1").unwrap()).await;
}
