//! Test machinery shared by every crate of the workspace (never published).
//!
//! - [`services`]: real Prometheus, Pushgateway and Alertmanager processes (Debian packages)
//!   on free loopback ports, stopped on drop.
//! - [`live`]: pods exposing the guide's metrics through `prometheus-client`, scraped live by
//!   Prometheus and VictoriaMetrics.
//! - [`traffic`]: deterministic OpenMetrics data for `promtool tsdb create-blocks-from`.
//! - [`http`]: a loopback HTTP server that records requests and answers from a script — a
//!   Slack or webhook receiver, or a faulty Prometheus.
//! - [`fake_helm`]: a recording fake of the helm CLI, and where the real one is.
//! - [`logs`]: captured `tracing` output, to check that no secret is logged.
//! - [`screenshot`]: headless Chromium's screenshot of a page, and its pixels.
//! - [`tls`]: a throw-away CA and a server certificate for 127.0.0.1, made with openssl.

pub mod fake_helm;
pub mod http;
pub mod live;
pub mod logs;
pub mod native;
pub mod screenshot;
pub mod services;
pub mod tls;
pub mod traffic;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// A workspace example built by `cargo test` (`target/<profile>/examples/<name>`), found from
/// the running test binary's path.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with cargo test, which builds the examples",
        path.display()
    );
    path
}
