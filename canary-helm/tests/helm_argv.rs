//! HelmDeployer against a recording fake helm: the exact argument vectors of each flow, the
//! typed errors, helm 3 vs 4 flags, dry runs, timeouts, and the Deployer conformance suite.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_core::test_util::{conformance, healthy_metrics, ManualClock, ScriptedSource};
use canary_core::{
    CanarySpec, CanaryValidator, Deployer, Outcome, ReleaseState, RollbackTarget, TrafficWeight,
    ValidationRequest, ValidatorConfig, Version,
};
use canary_helm::{Error, HelmConfig, HelmDeployer};
use testkit::fake_helm::FakeHelm;

const NS: &str = "prod";

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/chart")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

fn values_file() -> String {
    format!("{}/values-canary.yaml", chart())
}

fn v(s: &str) -> Version {
    Version::new(s).unwrap()
}

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|x| x.to_string()).collect()
}

struct Rig {
    fake: FakeHelm,
    helm: Arc<HelmDeployer>,
}

fn rig_with(fake: FakeHelm, tweak: impl FnOnce(&mut HelmConfig)) -> Rig {
    fake.seed_release(NS, "apex-inference", "v1");
    let mut config = HelmConfig {
        release: "apex-inference".into(),
        chart: chart(),
        namespace: Some(NS.into()),
        kube_context: Some("staging".into()),
        kubeconfig: Some("/etc/kube/config".into()),
        helm_binary: fake.binary(),
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    tweak(&mut config);
    Rig {
        helm: Arc::new(HelmDeployer::new(config).unwrap()),
        fake,
    }
}

fn rig() -> Rig {
    rig_with(FakeHelm::new(), |_| {})
}

fn common() -> Vec<String> {
    s(&[
        "--namespace",
        NS,
        "--kube-context",
        "staging",
        "--kubeconfig",
        "/etc/kube/config",
    ])
}

fn wait_v4(rollback_on_failure: bool) -> Vec<String> {
    let mut w = s(&["--wait=watcher"]);
    if rollback_on_failure {
        w.push("--rollback-on-failure".into());
    }
    w.extend(s(&["--timeout", "120s"]));
    w
}

fn cat(parts: &[Vec<String>]) -> Vec<String> {
    parts.concat()
}

fn get_values() -> Vec<String> {
    cat(&[
        s(&["get", "values", "apex-inference", "-o", "json"]),
        common(),
    ])
}

fn deploy_canary(version: &str) -> Vec<String> {
    cat(&[
        s(&["upgrade", "--install", "apex-inference-canary"]),
        vec![chart(), "-f".into(), values_file()],
        s(&[
            "--set-string",
            &format!("image.tag={version}"),
            "--set",
            "canary.enabled=true",
        ]),
        common(),
        wait_v4(true),
    ])
}

fn uninstall_canary() -> Vec<String> {
    cat(&[
        s(&["uninstall", "apex-inference-canary", "--ignore-not-found"]),
        common(),
        wait_v4(false),
    ])
}

fn validator(r: &Rig, canary: healthy_or_not::Kind, config: ValidatorConfig) -> CanaryValidator {
    let source = Arc::new(ScriptedSource::new());
    source.set("v1", healthy_metrics("v1"));
    source.set("v2", healthy_or_not::metrics(canary));
    CanaryValidator::new(source, r.helm.clone())
        .with_clock(Arc::new(ManualClock::default()))
        .with_config(config)
        .unwrap()
}

mod healthy_or_not {
    use canary_core::CanaryMetrics;

    #[derive(Clone, Copy)]
    pub(crate) enum Kind {
        Healthy,
        Regressing,
    }

    pub(crate) fn metrics(kind: Kind) -> CanaryMetrics {
        let m = canary_core::test_util::healthy_metrics("v2");
        match kind {
            Kind::Healthy => m,
            Kind::Regressing => m.with_error_rate_percent(7.0),
        }
    }
}
use healthy_or_not::Kind;

fn request() -> ValidationRequest {
    ValidationRequest::new(v("v2")).with_values_file(values_file())
}

#[tokio::test]
async fn deploy_then_promote_runs_exactly_these_commands() {
    let r = rig();
    let report = validator(&r, Kind::Healthy, ValidatorConfig::default())
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let promote = cat(&[
        s(&["upgrade", "apex-inference"]),
        vec![chart()],
        s(&[
            "--reuse-values",
            "--set-string",
            "image.tag=v2",
            "--set",
            "canary.enabled=false",
        ]),
        common(),
        wait_v4(true),
    ]);
    assert_eq!(
        r.fake.operations(),
        vec![
            get_values(),
            deploy_canary("v2"),
            promote,
            uninstall_canary()
        ]
    );
    assert_eq!(
        r.fake
            .calls()
            .iter()
            .filter(|c| c.argv[0] == "version")
            .count(),
        1,
        "the version is asked once"
    );
    let prod = r.fake.values(NS, "apex-inference").unwrap();
    assert_eq!(prod["image"]["tag"], "v2");
    assert_eq!(prod["canary"]["enabled"], false);
    assert!(
        r.fake.values(NS, "apex-inference-canary").is_none(),
        "the canary release is gone"
    );
    assert_eq!(
        r.helm.commands(),
        r.fake.operations(),
        "every cluster command is reported"
    );
}

#[tokio::test]
async fn deploy_then_rollback_runs_exactly_these_commands() {
    let r = rig();
    let report = validator(&r, Kind::Regressing, ValidatorConfig::default())
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        r.fake.operations(),
        vec![get_values(), deploy_canary("v2"), uninstall_canary()]
    );
    assert_eq!(
        r.fake.values(NS, "apex-inference").unwrap()["image"]["tag"],
        "v1",
        "production untouched"
    );
}

#[tokio::test]
async fn progressive_weights_are_set_one_by_one() {
    let r = rig();
    let report = validator(&r, Kind::Healthy, ValidatorConfig::progressive())
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);
    let ops = r.fake.operations();
    let weights: Vec<Vec<String>> = [5, 10, 25, 50]
        .iter()
        .map(|w| {
            cat(&[
                s(&["upgrade", "apex-inference-canary"]),
                vec![chart()],
                s(&["--reuse-values", "--set", &format!("canary.weight={w}")]),
                common(),
                wait_v4(true),
            ])
        })
        .collect();
    assert_eq!(&ops[2..6], &weights[..]);
    let canary_values_before_promotion = &ops[5];
    assert!(
        canary_values_before_promotion.contains(&"--reuse-values".to_owned()),
        "the image tag is kept"
    );
}

#[tokio::test]
async fn the_configs_values_files_come_before_the_requests_own() {
    let base = format!("{}/values.yaml", chart());
    let r = rig_with(FakeHelm::new(), |c| {
        c.values_files = vec![base.clone().into()]
    });
    r.helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: Some(values_file().into()),
        })
        .await
        .unwrap();
    let ops = r.fake.operations();
    let deploy = ops.last().unwrap();
    let files: Vec<&String> = deploy
        .windows(2)
        .filter(|w| w[0] == "-f")
        .map(|w| &w[1])
        .collect();
    assert_eq!(files, [&base, &values_file()], "{deploy:?}");
    // A file that is not there is refused before helm runs.
    let r = rig_with(FakeHelm::new(), |c| {
        c.values_files = vec!["/nonexistent/values.yaml".into()]
    });
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/values.yaml"), "{e}");
}

#[tokio::test]
async fn helm_3_gets_wait_and_atomic() {
    let r = rig_with(FakeHelm::with_version("v3.14.4"), |_| {});
    r.helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap();
    let ops = r.fake.operations();
    let deploy = ops.last().unwrap();
    assert!(
        deploy.contains(&"--wait".to_owned()) && deploy.contains(&"--atomic".to_owned()),
        "{deploy:?}"
    );
    assert!(
        !deploy
            .iter()
            .any(|a| a.starts_with("--wait=") || a == "--rollback-on-failure"),
        "{deploy:?}"
    );
}

#[tokio::test]
async fn the_fake_rejects_v3_flags_on_helm_4_as_helm_does() {
    let r = rig_with(FakeHelm::new(), |c| {
        c.helm_major = Some(3); // wrong on purpose
    });
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Failed { stderr, .. } if stderr.contains("unknown flag: --atomic")),
        "{e}"
    );
}

#[tokio::test]
async fn another_operation_in_progress_is_typed_and_retryable() {
    let r = rig();
    r.fake.fail(
        "upgrade",
        None,
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        1,
    );
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::OperationInProgress { ref release, .. } if release == "apex-inference-canary"),
        "{e}"
    );
    assert!(e.is_retryable());
    // Through the trait, the core sees a retryable deploy error that names the operation.
    r.fake.fail(
        "upgrade",
        None,
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        1,
    );
    let core = r
        .helm
        .deploy_canary(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(core.is_retryable());
    assert!(core.to_string().contains("deploy canary v2"), "{core}");
}

#[tokio::test]
async fn helm_timeouts_are_typed() {
    let r = rig();
    r.fake.fail(
        "upgrade",
        None,
        "Error: UPGRADE FAILED: context deadline exceeded",
        1,
    );
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
}

#[tokio::test]
async fn a_missing_release_is_typed() {
    let r = rig_with(FakeHelm::new(), |c| c.release = "absent".into());
    let e = r.helm.promote_version(&v("v2")).await.unwrap_err();
    assert!(
        matches!(&e, Error::ReleaseNotFound { stderr, .. } if stderr.contains("has no deployed releases")),
        "{e}"
    );
    assert_eq!(
        r.helm.production_version().await.unwrap(),
        None,
        "reading a missing release is no version, not an error"
    );
}

#[tokio::test]
async fn a_missing_chart_is_typed() {
    let r = rig_with(FakeHelm::new(), |c| c.chart = "/nonexistent/chart".into());
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::ChartNotFound { chart, .. } if chart == "/nonexistent/chart"),
        "{e}"
    );
}

#[tokio::test]
async fn other_failures_keep_the_full_stderr() {
    let r = rig();
    let stderr = "Error: UPGRADE FAILED: cannot patch \"apex-inference-canary\" with kind Deployment: Deployment.apps \"apex-inference-canary\" is invalid: spec.selector: Invalid value: field is immutable";
    r.fake.fail("upgrade", None, stderr, 1);
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Failed { stderr: got, exit_code: Some(1), .. } if got == stderr),
        "{e}"
    );
}

#[tokio::test]
async fn a_failed_deploy_in_the_flow_rolls_the_canary_back() {
    let r = rig();
    r.fake.fail(
        "upgrade",
        Some("apex-inference-canary"),
        "Error: UPGRADE FAILED: timed out waiting for the condition",
        1,
    );
    let report = validator(&r, Kind::Healthy, ValidatorConfig::default())
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .reason
            .contains("timed out waiting for the condition"),
        "{}",
        report.reason
    );
    assert_eq!(
        r.fake.operations(),
        vec![get_values(), deploy_canary("v2"), uninstall_canary()]
    );
}

#[tokio::test]
async fn production_rolls_back_to_the_last_deployed_revision_found_in_history() {
    let r = rig();
    r.fake.seed_history(
        NS,
        "apex-inference",
        &[
            (1, "superseded", "v1"),
            (2, "superseded", "v2"),
            (3, "failed", "v3"),
            (4, "deployed", "v4"),
        ],
    );
    r.helm
        .rollback(&RollbackTarget::Production { revision: None })
        .await
        .unwrap();
    let ops = r.fake.operations();
    assert_eq!(
        ops[0],
        cat(&[s(&["history", "apex-inference", "-o", "json"]), common()])
    );
    assert_eq!(
        ops[1],
        cat(&[
            s(&["rollback", "apex-inference", "2"]),
            common(),
            wait_v4(false)
        ])
    );
    assert_eq!(r.helm.production_version().await.unwrap(), Some(v("v2")));
    r.helm
        .rollback(&RollbackTarget::Production { revision: Some(1) })
        .await
        .unwrap();
    assert_eq!(r.helm.production_version().await.unwrap(), Some(v("v1")));
}

#[tokio::test]
async fn status_is_parsed_from_helm_json() {
    let r = rig();
    r.helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap();
    let status = r.helm.status().await.unwrap();
    assert_eq!(status.production, ReleaseState::Deployed);
    assert_eq!(status.production_revision, Some(1));
    assert_eq!(status.canary, ReleaseState::Deployed);
    assert_eq!(status.canary_version, Some(v("v2")));
    r.helm.rollback(&RollbackTarget::Canary).await.unwrap();
    assert_eq!(r.helm.status().await.unwrap().canary, ReleaseState::Absent);
}

#[tokio::test]
async fn dry_run_reports_commands_without_running_them() {
    let r = rig_with(FakeHelm::new(), |c| {
        c.dry_run = true;
        c.helm_major = Some(4);
    });
    let report = validator(&r, Kind::Healthy, ValidatorConfig::default())
        .validate(request().with_baseline(v("v1")))
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);
    assert!(
        r.fake.calls().is_empty(),
        "nothing ran: {:?}",
        r.fake.calls()
    );
    let commands = r.helm.commands();
    assert_eq!(commands[0], deploy_canary("v2"));
    assert_eq!(commands[1][..2], s(&["upgrade", "apex-inference"])[..]);
    assert_eq!(commands[2], uninstall_canary());
}

#[tokio::test]
async fn a_hanging_helm_is_stopped_at_the_timeout() {
    let r = rig_with(FakeHelm::new(), |c| {
        c.timeout = Duration::from_secs(1);
        c.kill_grace = Duration::from_millis(500);
        c.helm_major = Some(4);
    });
    r.fake.hang("upgrade", 60.0);
    let started = Instant::now();
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Killed { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_missing_values_file_is_refused_before_helm_runs() {
    let r = rig();
    let e = r
        .helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: Some("/nope/values.yaml".into()),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "values_file",
                ..
            }
        ),
        "{e}"
    );
    assert!(r.fake.operations().is_empty());
}

#[tokio::test]
async fn arguments_with_spaces_stay_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let chart_dir = dir.path().join("my chart");
    std::fs::create_dir(&chart_dir).unwrap();
    let r = rig_with(FakeHelm::new(), |c| {
        c.chart = chart_dir.display().to_string()
    });
    r.helm
        .deploy(&CanarySpec {
            version: v("v2"),
            values_file: None,
        })
        .await
        .unwrap();
    assert_eq!(r.fake.operations()[0][3], chart_dir.display().to_string());
}

#[test]
fn injection_attempts_never_reach_helm() {
    for bad in [
        "v1,canary.enabled=false",
        "v1 --set x=y",
        "$(reboot)",
        "v1\ncanary.enabled=false",
    ] {
        assert!(Version::new(bad).is_err(), "{bad}");
    }
    for release in ["app;rm -rf", "App", "app --namespace kube-system"] {
        let e = HelmDeployer::new(HelmConfig {
            release: release.into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, Error::InvalidReleaseName { .. }), "{release}");
    }
    let weight = TrafficWeight::new(101);
    assert!(weight.is_err());
}

#[tokio::test]
async fn helm_deployer_passes_the_conformance_suite() {
    let r = rig();
    conformance::deployer(r.helm.as_ref(), &v("v2")).await;

    // When the cluster refuses everything, every operation is an Error::Deploy naming it.
    let r = rig();
    for command in ["upgrade", "uninstall"] {
        r.fake
            .fail(command, None, "Error: Kubernetes cluster unreachable", 10);
    }
    conformance::failing_deployer(r.helm.as_ref(), &v("v2")).await;
}

#[tokio::test]
async fn a_missing_helm_binary_is_a_clear_error() {
    let r = rig_with(FakeHelm::new(), |c| {
        c.helm_binary = "/nonexistent/helm".into()
    });
    let e = r.helm.helm_major().await.unwrap_err();
    assert!(e.to_string().contains("is helm installed"), "{e}");
}

#[tokio::test]
async fn a_blank_or_hostile_production_tag_is_an_error_never_a_baseline() {
    for tag in ["", " ", "v1\"} or vector(1) or {x=\""] {
        let fake = FakeHelm::new();
        fake.seed_release(NS, "apex-inference", tag);
        let helm = HelmDeployer::new(HelmConfig {
            release: "apex-inference".into(),
            namespace: Some(NS.into()),
            helm_binary: fake.binary(),
            ..Default::default()
        })
        .unwrap();
        let e = helm.production_version().await.unwrap_err();
        assert!(
            matches!(e, canary_core::Error::InvalidVersion { .. }),
            "{tag:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_deployed_baseline_is_production_s_version_with_the_canary_s_values_and_its_track() {
    let r = rig();
    let spec = CanarySpec {
        version: v("v1"),
        values_file: Some(values_file().into()),
    };
    let canary = CanarySpec {
        version: v("v2"),
        values_file: Some(values_file().into()),
    };
    r.helm.deploy_canary(&canary).await.unwrap();
    r.helm.deploy_baseline(&spec).await.unwrap();
    r.helm
        .set_canary_weight(TrafficWeight::new(25).unwrap())
        .await
        .unwrap();
    r.helm.remove_baseline().await.unwrap();
    r.helm.remove_baseline().await.unwrap();
    let commands = r.helm.commands();
    let mut install = s(&[
        "upgrade",
        "--install",
        "apex-inference-baseline",
        &chart(),
        "-f",
        &values_file(),
        "--set-string",
        "image.tag=v1",
        "--set",
        "canary.enabled=true",
        "--set-string",
        "track=baseline",
    ]);
    install.extend(common());
    assert_eq!(commands[1][..install.len()], install[..]);
    // The weight moves for the canary and the baseline alike.
    assert_eq!(commands[2][1], "apex-inference-canary");
    assert_eq!(commands[3][1], "apex-inference-baseline");
    assert!(commands[3].contains(&"canary.weight=25".to_owned()));
    for c in &commands[4..] {
        assert_eq!(
            c[..3],
            s(&["uninstall", "apex-inference-baseline", "--ignore-not-found"])
        );
    }
    // After removal, a weight change leaves the (gone) baseline alone.
    r.helm
        .set_canary_weight(TrafficWeight::new(50).unwrap())
        .await
        .unwrap();
    assert!(r.helm.commands()[6..]
        .iter()
        .all(|c| c[1] != "apex-inference-baseline"));
    conformance::deployer_baseline(r.helm.as_ref(), &v("v1")).await;
}

#[tokio::test]
async fn baseline_values_cannot_smuggle_helm_syntax_and_long_names_fail_only_when_used() {
    for (k, val) in [("track", "a,b=c"), ("podLabels[0]", "x"), ("track", "")] {
        let e = HelmDeployer::new(HelmConfig {
            baseline_values: [(k.to_owned(), val.to_owned())].into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("baseline_values"), "{e}");
    }
    // 46 characters leave room for "-canary", not for "-baseline".
    let r = rig_with(FakeHelm::new(), |c| c.release = "a".repeat(46));
    let spec = CanarySpec {
        version: v("v1"),
        values_file: None,
    };
    r.helm.deploy_canary(&spec).await.unwrap();
    let e = r.helm.deploy_baseline(&spec).await.unwrap_err();
    assert!(canary_core::error::chain(&e).contains("baseline"), "{e}");
}
