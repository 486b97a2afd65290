//! End to end against a real cluster. Opt-in: it runs only when KUBECONFIG is set, through
//! `./scripts/test.sh` (which then adds `--ignored` for this file) or by hand:
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo test -p canary-helm --test cluster -- --ignored
//! ```
//!
//! It installs the example chart as production in a fresh namespace (with a pause image, so
//! nothing needs to serve traffic), runs the Deployer conformance suite, and deletes the
//! namespace's releases.

use std::path::PathBuf;
use std::time::Duration;

use canary_core::test_util::conformance;
use canary_core::{Deployer, Version};
use canary_helm::{HelmConfig, HelmDeployer, WaitStrategy};

#[tokio::test]
#[ignore = "needs a Kubernetes cluster: set KUBECONFIG and run with --ignored (./scripts/test.sh does)"]
async fn helm_deployer_drives_a_real_cluster() {
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG must point at a test cluster");
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/chart");
    let namespace = format!("canary-e2e-{}", std::process::id());
    let config = HelmConfig {
        release: "apex-e2e".into(),
        chart: chart.display().to_string(),
        namespace: Some(namespace.clone()),
        kubeconfig: Some(kubeconfig.into()),
        helm_binary: testkit::fake_helm::real_helm(),
        wait: WaitStrategy::None,
        timeout: Duration::from_secs(120),
        extra_args: vec![
            "--set-string".into(),
            "image.repository=registry.k8s.io/pause".into(),
        ],
        ..Default::default()
    };
    let helm = HelmDeployer::new(config.clone()).unwrap();

    // Production first, with the chart's own command shape.
    let install = std::process::Command::new(&config.helm_binary)
        .args([
            "upgrade",
            "--install",
            "apex-e2e",
            &config.chart,
            "--create-namespace",
            "--namespace",
            &namespace,
        ])
        .args([
            "--set-string",
            "image.repository=registry.k8s.io/pause",
            "--set-string",
            "image.tag=3.9",
        ])
        .status()
        .unwrap();
    assert!(install.success());

    conformance::deployer(&helm, &Version::new("3.10").unwrap()).await;
    assert_eq!(
        helm.production_version().await.unwrap(),
        Some(Version::new("3.10").unwrap())
    );
    assert!(!helm.history().await.unwrap().is_empty());

    let _ = std::process::Command::new(&config.helm_binary)
        .args([
            "uninstall",
            "apex-e2e",
            "--namespace",
            &namespace,
            "--ignore-not-found",
        ])
        .status();
}
