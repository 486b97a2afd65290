//! The example chart, checked with the real helm (v4, installed by ./scripts/test.sh):
//! `helm lint` and `helm template`, with and without values-canary.yaml.

use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/chart")
}

fn helm(args: &[&str]) -> String {
    let out = Command::new(testkit::fake_helm::real_helm())
        .args(args)
        .current_dir(chart())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn render(release: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", release, ".", "--set-string", "image.tag=v1.3.0"];
    args.extend_from_slice(extra);
    let text = helm(&args);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

#[test]
fn the_real_helm_is_v4() {
    let v = helm(&["version", "--template", "{{.Version}}"]);
    assert!(v.starts_with("v4."), "{v}");
}

#[test]
fn lint_passes_with_and_without_canary_values() {
    assert!(helm(&["lint", "."]).contains("0 chart(s) failed"));
    assert!(helm(&["lint", ".", "-f", "values-canary.yaml"]).contains("0 chart(s) failed"));
    assert!(helm(&[
        "lint",
        ".",
        "--set",
        "trafficSplit.provider=istio",
        "-f",
        "values-canary.yaml"
    ])
    .contains("0 chart(s) failed"));
}

#[test]
fn production_renders_the_stable_deployment_and_service() {
    let objects = render("apex-inference", &[]);
    assert_eq!(objects.len(), 2, "{objects:?}");
    let d = find(&objects, "Deployment");
    assert_eq!(d["metadata"]["name"], "apex-inference");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        pod["version"], "v1.3.0",
        "pods carry the version label the queries select"
    );
    assert_eq!(pod["track"], "stable");
    let s = find(&objects, "Service");
    assert_eq!(s["spec"]["selector"]["track"], "stable");
    assert!(s["metadata"]["annotations"]
        .get("getambassador.io/config")
        .is_none());
}

#[test]
fn canary_renders_its_deployment_service_and_weight() {
    let objects = render("apex-inference-canary", &["-f", "values-canary.yaml"]);
    let d = find(&objects, "Deployment");
    assert_eq!(d["metadata"]["name"], "apex-inference-canary");
    assert_eq!(d["spec"]["replicas"], 1);
    let pod = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        (pod["version"].as_str(), pod["track"].as_str()),
        (Some("v1.3.0"), Some("canary"))
    );
    assert_eq!(
        pod["app.kubernetes.io/instance"], "apex-inference",
        "same app as production"
    );
    let s = find(&objects, "Service");
    let mapping = s["metadata"]["annotations"]["getambassador.io/config"]
        .as_str()
        .unwrap();
    let mapping: Value = serde_yaml::from_str(mapping.trim_start_matches("---\n")).unwrap();
    assert_eq!(mapping["kind"], "Mapping");
    assert_eq!(mapping["weight"], 10);
    assert_eq!(mapping["service"], "apex-inference-canary:8000");
}

#[test]
fn the_weight_follows_set_canary_weight() {
    let objects = render(
        "apex-inference-canary",
        &["-f", "values-canary.yaml", "--set", "canary.weight=25"],
    );
    let s = find(&objects, "Service");
    assert!(s["metadata"]["annotations"]["getambassador.io/config"]
        .as_str()
        .unwrap()
        .contains("weight: 25"));

    let objects = render(
        "apex-inference-canary",
        &[
            "-f",
            "values-canary.yaml",
            "--set",
            "canary.weight=25",
            "--set",
            "trafficSplit.provider=istio",
        ],
    );
    let vs = find(&objects, "VirtualService");
    let route = &vs["spec"]["http"][0]["route"];
    assert_eq!(
        (
            route[0]["destination"]["host"].as_str(),
            route[0]["weight"].as_i64()
        ),
        (Some("apex-inference"), Some(75))
    );
    assert_eq!(
        (
            route[1]["destination"]["host"].as_str(),
            route[1]["weight"].as_i64()
        ),
        (Some("apex-inference-canary"), Some(25))
    );
}

#[test]
fn a_comma_in_set_string_would_inject_a_value_so_versions_refuse_it() {
    // What helm does with a comma: a second value. This is why Version refuses ','.
    let objects = render(
        "apex-inference-canary",
        &[
            "-f",
            "values-canary.yaml",
            "--set-string",
            "image.tag=v1,canary.enabled=false",
        ],
    );
    let d = find(&objects, "Deployment");
    // helm split the value: the tag is cut at the comma, and a second key was set.
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["version"], "v1");
    assert!(canary_core::Version::new("v1,canary.enabled=false").is_err());
}

/// The deployed baseline, as the helm deployer installs it: production's version at the
/// canary's size and weight, its pods labelled `track: baseline`, its own Service and Mapping,
/// and no second Istio VirtualService.
#[test]
fn a_deployed_baseline_renders_its_own_pods_labelled_apart() {
    let objects = render(
        "apex-inference-baseline",
        &[
            "-f",
            "values-canary.yaml",
            "--set",
            "canary.enabled=true",
            "--set-string",
            "track=baseline",
        ],
    );
    let d = find(&objects, "Deployment");
    assert_eq!(d["metadata"]["name"], "apex-inference-baseline");
    assert_eq!(d["spec"]["replicas"], 1, "the canary's size");
    let pod = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        (pod["version"].as_str(), pod["track"].as_str()),
        (Some("v1.3.0"), Some("baseline"))
    );
    assert_eq!(pod["app.kubernetes.io/instance"], "apex-inference");
    let s = find(&objects, "Service");
    assert_eq!(
        s["spec"]["selector"]["track"], "baseline",
        "its own pods only"
    );
    let mapping = s["metadata"]["annotations"]["getambassador.io/config"]
        .as_str()
        .unwrap();
    let mapping: Value = serde_yaml::from_str(mapping.trim_start_matches("---\n")).unwrap();
    assert_eq!(mapping["name"], "apex-inference-baseline-mapping");
    assert_eq!(mapping["weight"], 10, "the canary's weight");
    let istio = render(
        "apex-inference-baseline",
        &[
            "-f",
            "values-canary.yaml",
            "--set-string",
            "track=baseline",
            "--set",
            "trafficSplit.provider=istio",
        ],
    );
    assert!(!istio.iter().any(|o| o["kind"] == "VirtualService"));
    assert!(helm(&[
        "lint",
        ".",
        "-f",
        "values-canary.yaml",
        "--set-string",
        "track=baseline"
    ])
    .contains("0 chart(s) failed"));
}
