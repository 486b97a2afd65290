//! The image, as far as this machine can build it. No Docker engine runs here and base images
//! cannot be pulled, so the runtime stage's filesystem is assembled in a directory the way the
//! Dockerfile's runtime stage gets it: the binary where its `COPY` puts it, and from the host's
//! Debian 12 only what `gcr.io/distroless/cc-debian12:nonroot` holds (glibc, libgcc, CA
//! certificates, the `nonroot` user). The binary then runs from it as the Dockerfile's `USER`,
//! chrooted, with the root filesystem mounted read-only as the chart mounts it: `--version`,
//! and `canary serve` answering from the test Prometheus.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The shared objects distroless' `cc` image holds (the loader, glibc's, libgcc): a binary
/// needing anything else would not start in the image.
const DISTROLESS_CC: [&str; 8] = [
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
];

/// What the Dockerfile's runtime stage says.
#[derive(Debug)]
struct Runtime {
    base: String,
    binary: String,
    /// Where the man pages and completions go (`COPY --from=build /out/share …`).
    share: String,
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not an exec-form array: {text}: {e}"))
}

fn runtime_stage() -> Runtime {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap();
    let stages: Vec<&str> = text.split("\nFROM ").collect();
    assert!(stages.len() >= 3, "a multi-stage Dockerfile: {text}");
    // The build stage makes the extras with the script this test runs.
    assert!(
        stages[stages.len() - 2].contains("scripts/package-extras.sh /out/canary /out/share"),
        "the build stage runs scripts/package-extras.sh"
    );
    let last = stages.last().unwrap();
    let mut lines = last.lines();
    let base = lines.next().unwrap().trim().to_owned();
    let (mut binary, mut share, mut user, mut entrypoint, mut cmd) = (None, None, None, None, None);
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("COPY --from=build ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            match parts[0] {
                "/out/canary" => binary = Some(parts[1].to_owned()),
                "/out/share" => share = Some(parts[1].to_owned()),
                other => panic!("a COPY this test does not reproduce: {other}"),
            }
        } else if let Some(rest) = line.strip_prefix("USER ") {
            user = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            entrypoint = Some(json_array(rest));
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            cmd = Some(json_array(rest));
        } else if line.starts_with("RUN ") {
            panic!("the runtime stage runs nothing (it has no shell): {line}");
        }
    }
    Runtime {
        base,
        binary: binary.expect("COPY --from=build /out/canary"),
        share: share.expect("COPY --from=build /out/share"),
        user: user.expect("USER"),
        entrypoint: entrypoint.expect("ENTRYPOINT"),
        cmd: cmd.expect("CMD"),
    }
}

/// The shared objects `binary` needs, by name and host path.
fn needed(binary: &Path) -> Vec<(String, Option<PathBuf>)> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = l.split_whitespace().next()?;
            let name = Path::new(name).file_name()?.to_str()?.to_owned();
            let path = match l.split_once("=> ") {
                Some((_, rest)) => rest.split_whitespace().next().map(PathBuf::from),
                None => l
                    .split_whitespace()
                    .next()
                    .filter(|p| p.starts_with('/'))
                    .map(PathBuf::from),
            };
            Some((name, path))
        })
        .collect()
}

fn copy_into(root: &Path, host: &Path, inside: &Path) {
    let to = root.join(inside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(host, &to).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
}

/// The runtime stage's filesystem in `root`, with `config` at the chart's config path.
fn assemble(root: &Path, r: &Runtime, config: &str) {
    let binary = Path::new(env!("CARGO_BIN_EXE_canary"));
    copy_into(root, binary, Path::new(&r.binary));
    // The extras, made by the script the build stage runs, where the COPY puts them.
    let share = root.join(r.share.trim_start_matches('/'));
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/package-extras.sh"))
            .arg(binary)
            .arg(&share)
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for (name, path) in needed(binary) {
        assert!(
            DISTROLESS_CC.contains(&name.as_str()),
            "the binary needs {name}, which {} does not hold",
            r.base
        );
        if let Some(path) = path {
            // Both the path the loader is named by and the library's own.
            copy_into(root, &path, &path);
            copy_into(root, &path, &Path::new("/lib/x86_64-linux-gnu").join(&name));
        }
    }
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if certs.exists() {
        copy_into(root, certs, certs);
    }
    let etc = root.join("etc");
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nnonroot:x:65532:\n").unwrap();
    std::fs::create_dir_all(root.join("home/nonroot")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(etc.join("canary")).unwrap();
    std::fs::write(etc.join("canary/canary.yaml"), config).unwrap();
}

/// `args` run in `root` as the Dockerfile's user, the root filesystem read-only.
fn in_image(root: &Path, r: &Runtime, args: &[String]) -> Command {
    let root = root.to_str().unwrap();
    let mut script = format!(
        "mount --bind {root} {root} && mount -o remount,bind,ro {root} {root} && exec chroot --userspec={} {root}",
        r.user
    );
    for a in r.entrypoint.iter().chain(args) {
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c)),
            "{a}"
        );
        script.push(' ');
        script.push_str(a);
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_ready(port: u16, child: &mut Child) {
    testkit::services::wait_until_ready(port, "/readyz", child, Duration::from_secs(20));
}

#[test]
fn the_runtime_stage_is_minimal_non_root_and_runs_the_command() {
    let r = runtime_stage();
    assert!(r.base.starts_with("gcr.io/distroless/cc-"), "{r:?}");
    assert!(r.base.ends_with(":nonroot"), "{r:?}");
    assert_eq!(r.user, "65532:65532", "the chart's runAsUser");
    assert_eq!(
        r.entrypoint,
        std::slice::from_ref(&r.binary),
        "`canary` is the entrypoint"
    );
    assert_eq!(r.cmd, ["serve", "--config", "/etc/canary/canary.yaml"]);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    assemble(&root, &r, "judge: sequential\n");
    let out = in_image(&root, &r, &["--version".into()]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("canary {}", env!("CARGO_PKG_VERSION"))
    );

    // Read-only, and not root: nothing can be written, not even where root could.
    let out = in_image(
        &root,
        &r,
        &[
            "config".into(),
            "check".into(),
            "/etc/canary/canary.yaml".into(),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let probe = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(format!(
            "mount --bind {0} {0} && mount -o remount,bind,ro {0} {0} && touch {0}/tmp/written",
            root.display()
        ))
        .output()
        .unwrap();
    assert!(!probe.status.success(), "the root filesystem is read-only");
    assert!(
        text(&probe).contains("Read-only file system"),
        "{}",
        text(&probe)
    );

    // The man pages and completions ship in the image, each the binary's own.
    let share = root.join(r.share.trim_start_matches('/'));
    for page in [
        "canary",
        "canary-run",
        "canary-serve",
        "canary-config-check",
    ] {
        let man = std::fs::read_to_string(share.join(format!("man/man1/{page}.1"))).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{page}: {man}"
        );
        assert!(man.contains(&page.to_uppercase()), "{page}");
    }
    for (file, mark) in [
        ("bash-completion/completions/canary", "complete -F"),
        ("zsh/site-functions/_canary", "#compdef canary"),
        (
            "fish/vendor_completions.d/canary.fish",
            "complete -c canary",
        ),
    ] {
        let script = std::fs::read_to_string(share.join(file)).unwrap();
        assert!(script.contains(mark), "{file}");
        assert!(
            script.contains("backtest"),
            "{file} completes every subcommand"
        );
    }
}

#[test]
fn canary_serve_runs_from_the_image_against_prometheus() {
    let r = runtime_stage();
    let (prometheus, end) = common::prometheus();
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    // The chart's config (its judge: sequential), with this test's Prometheus and port.
    assemble(
        &root,
        &r,
        &format!(
            "prometheus:\n  url: {}\njudge: sequential\nserve:\n  listen: 127.0.0.1:{port}\n",
            prometheus.url
        ),
    );
    let mut child = in_image(&root, &r, &r.cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    // Twenty minutes of a healthy canary: not yet enough to promote; 8 % failing: roll back.
    for (canary, decision) in [("v2", "continue"), ("v3", "rollback_auto")] {
        let answer = common::analysis(port, canary, end);
        assert_eq!(answer["decision"], decision, "{answer}");
    }
    // The process is the binary itself (unshare, sh and chroot exec it): SIGTERM drains it.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
