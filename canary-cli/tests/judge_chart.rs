//! The service's own chart (`deploy/helm/canary-judge`), checked with the real helm (v4,
//! installed by ./scripts/test.sh): lint and template pass, the objects a production service
//! needs are there, and the config it mounts passes `canary config check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/canary-judge")
}

fn helm(args: &[&str]) -> (bool, String) {
    let out = Command::new(testkit::fake_helm::real_helm())
        .args(args)
        .arg(chart())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "judge"];
    args.extend_from_slice(extra);
    let (ok, text) = helm(&args);
    assert!(ok, "{text}");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

#[test]
fn lint_passes_and_a_token_is_required_when_auth_is_on() {
    let (ok, text) = helm(&["lint", "--set", "auth.authToken=t0ken"]);
    assert!(ok && text.contains("0 chart(s) failed"), "{text}");
    let (ok, text) = helm(&["lint", "--set", "auth.existingSecret=judge-token"]);
    assert!(ok, "{text}");
    let (ok, text) = helm(&["template", "judge"]);
    assert!(!ok && text.contains("auth.authToken"), "{text}");
}

#[test]
fn the_rendered_service_has_what_production_needs() {
    let objects = render(&["--set", "auth.authToken=t0ken"]);
    let d = kind(&objects, "Deployment").expect("a Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "serve");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(kind(&objects, "Service").is_some());
    let pdb = kind(&objects, "PodDisruptionBudget").expect("a PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(kind(&objects, "ServiceMonitor").is_none(), "off by default");
    let secret = kind(&objects, "Secret").expect("a Secret from authToken");
    assert!(secret["data"]["auth-token"].is_string());
    // The token is in the Secret, never in the ConfigMap.
    let config = kind(&objects, "ConfigMap").unwrap()["data"]["canary.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!config.contains("t0ken"), "{config}");

    // The mounted config passes `canary config check` (with the token file where the pod has it).
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("auth-token");
    std::fs::write(&token, "t0ken").unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(
        &file,
        config.replace(
            "/var/run/secrets/canary/auth-token",
            token.to_str().unwrap(),
        ),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // A ServiceMonitor on request, and an existing Secret instead of a new one.
    let objects = render(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "auth.existingSecret=judge-token",
    ]);
    let sm = kind(&objects, "ServiceMonitor").expect("a ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert!(kind(&objects, "Secret").is_none());
    let volumes = &kind(&objects, "Deployment").unwrap()["spec"]["template"]["spec"]["volumes"];
    assert!(volumes
        .as_sequence()
        .unwrap()
        .iter()
        .any(|v| v["secret"]["secretName"] == "judge-token"));
}
