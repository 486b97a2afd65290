//! A recording fake of the helm CLI (a Python script), for tests without a cluster.
//!
//! It keeps releases in a state file, records argv and the helm environment of every call,
//! answers `status`, `history` and `get values` in helm's real JSON formats, checks arguments
//! as helm does (unknown flags, v3 vs v4 flags), and fails on request with helm's real stderr.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

const SCRIPT: &str = include_str!("helm.py");

/// One recorded call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The arguments, without the program name.
    pub argv: Vec<String>,
    /// `KUBECONFIG` and `HELM_*` variables as seen by the fake.
    pub env: Vec<(String, String)>,
}

/// A fake helm in its own directory. Put [`FakeHelm::dir`] on PATH, or use [`FakeHelm::binary`].
#[derive(Debug)]
pub struct FakeHelm {
    dir: TempDir,
}

impl FakeHelm {
    /// A fake helm 4 with no releases.
    pub fn new() -> FakeHelm {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("helm");
        std::fs::write(&path, SCRIPT).expect("write fake helm");
        make_executable(&path);
        FakeHelm { dir }
    }

    /// A fake of another helm version, e.g. `v3.14.4`.
    pub fn with_version(version: &str) -> FakeHelm {
        let fake = FakeHelm::new();
        std::fs::write(fake.dir.path().join("version.txt"), version).expect("write version");
        fake
    }

    /// The directory holding `helm`: prepend it to PATH.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The fake's path.
    pub fn binary(&self) -> PathBuf {
        self.dir.path().join("helm")
    }

    /// PATH with the fake first.
    pub fn path_env(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.dir.path().display())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        let text = std::fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                Call {
                    argv: v["argv"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    env: v["env"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect(),
                }
            })
            .collect()
    }

    /// The argv of every call except `version`.
    pub fn operations(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .map(|c| c.argv)
            .filter(|a| a.first().map(String::as_str) != Some("version"))
            .collect()
    }

    /// Makes the next `times` calls of `command` (optionally on `release`) fail with `stderr`.
    pub fn fail(&self, command: &str, release: Option<&str>, stderr: &str, times: u32) {
        self.add_fault(serde_json::json!({"command": command, "release": release, "stderr": stderr, "times": times}));
    }

    /// Makes the next call of `command` hang for `seconds` (then succeed).
    pub fn hang(&self, command: &str, seconds: f64) {
        self.add_fault(serde_json::json!({"command": command, "sleep": seconds, "times": 1}));
    }

    fn add_fault(&self, mut fault: serde_json::Value) {
        if fault["release"].is_null() {
            fault.as_object_mut().unwrap().remove("release");
        }
        let path = self.dir.path().join("faults.json");
        let mut faults: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        faults.push(fault);
        std::fs::write(path, serde_json::to_string(&faults).unwrap()).expect("write faults");
    }

    /// Installs `release` at `tag`, as if production were already deployed.
    pub fn seed_release(&self, namespace: &str, release: &str, tag: &str) {
        let path = self.dir.path().join("state.json");
        let mut state: serde_json::Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::json!({}));
        state[namespace][release] = serde_json::json!({"revisions": [{
            "revision": 1, "updated": "2026-11-01T00:00:00Z", "status": "deployed",
            "chart": "apex-inference-0.1.0", "app_version": "1.0.0", "description": "Install complete",
            "config": {"image": {"tag": tag}, "canary": {"enabled": false}}
        }]});
        std::fs::write(path, state.to_string()).expect("write state");
    }

    /// Writes a release's history: `(revision, status, image tag)`, oldest first.
    pub fn seed_history(&self, namespace: &str, release: &str, revisions: &[(u32, &str, &str)]) {
        let path = self.dir.path().join("state.json");
        let mut state: serde_json::Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::json!({}));
        let revisions: Vec<serde_json::Value> = revisions
            .iter()
            .map(|(n, status, tag)| {
                serde_json::json!({"revision": n, "updated": "2026-11-01T00:00:00Z", "status": status,
                    "chart": "apex-inference-0.1.0", "app_version": "1.0.0", "description": "seeded",
                    "config": {"image": {"tag": tag}, "canary": {"enabled": false}}})
            })
            .collect();
        state[namespace][release] = serde_json::json!({ "revisions": revisions });
        std::fs::write(path, state.to_string()).expect("write state");
    }

    /// The fake's view of a release's current values, if it exists.
    pub fn values(&self, namespace: &str, release: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("state.json")).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        let revisions = state[namespace][release]["revisions"].as_array()?;
        revisions
            .iter()
            .rev()
            .find(|r| r["status"] == "deployed")
            .map(|r| r["config"].clone())
    }
}

impl Default for FakeHelm {
    fn default() -> Self {
        Self::new()
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("metadata").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// The real helm binary that `./scripts/test.sh` installs (env `CANARY_HELM`, else
/// `.tools/bin/helm` in the workspace).
pub fn real_helm() -> PathBuf {
    if let Some(p) = std::env::var_os("CANARY_HELM") {
        return PathBuf::from(p);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/helm");
    assert!(
        path.exists(),
        "the real helm is missing at {}: run ./scripts/test.sh, which installs it",
        path.display()
    );
    path
}
