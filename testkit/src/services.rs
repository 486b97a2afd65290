//! Real Prometheus, Pushgateway and Alertmanager, started on free loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::free_port;

/// A server process with its own data directory; killed and cleaned up on drop.
#[derive(Debug)]
pub struct Service {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The port.
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl Service {
    /// The service's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `program` with the arguments `args` gives for fresh ports (the listening port
    /// first), until it is ready. A port is free when picked and may be taken by another test
    /// before the server binds it: a server that exits with "address already in use" is
    /// started again on new ports.
    fn spawn(
        program: &str,
        dir: TempDir,
        ready: Ready<'_>,
        args: impl Fn() -> (u16, Vec<String>),
    ) -> Service {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let (port, args) = args();
            let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
            let mut child = Command::new(program)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {program}: {e}; run ./scripts/test.sh, which installs it")
                });
            match wait_ready(&mut child, port, dir.path(), ready) {
                Ok(()) => {
                    return Service {
                        url: format!("http://127.0.0.1:{port}"),
                        port,
                        child,
                        dir,
                    }
                }
                Err(Exit::Clash) if attempt < ATTEMPTS => continue,
                Err(Exit::Clash | Exit::Exited) => {
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                    panic!("{program} exited with {status}:\n{}", read_log(dir.path()));
                }
                Err(Exit::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{program} was not ready within 60 s:\n{}",
                        read_log(dir.path())
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts `program` until `GET ready_path` answers 200 (see `spawn`).
    pub(crate) fn start(
        program: &str,
        dir: TempDir,
        ready_path: &str,
        args: impl Fn() -> (u16, Vec<String>),
    ) -> Service {
        Service::spawn(program, dir, Ready::Http(ready_path), args)
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// Why a server did not become ready.
enum Exit {
    /// It exited because its port was taken meanwhile.
    Clash,
    /// It exited for another reason.
    Exited,
    /// It ran but was not ready within 60 s.
    Timeout,
}

fn wait_ready(child: &mut Child, port: u16, dir: &Path, ready: Ready<'_>) -> Result<(), Exit> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(if read_log(dir).contains("address already in use") {
                Exit::Clash
            } else {
                Exit::Exited
            });
        }
        let is_ready = match ready {
            Ready::Http(path) => matches!(get(port, path), Ok((200, _))),
            Ready::LogLine(line) => read_log(dir).contains(line),
        };
        if is_ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Exit::Timeout)
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to tell that a server is up.
#[derive(Clone, Copy)]
enum Ready<'a> {
    /// `GET path` answers 200.
    Http(&'a str),
    /// The log has this line (for TLS servers, which plain GETs cannot ask).
    LogLine(&'a str),
}

/// A blocking `GET` on loopback: `(status, body)`.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    request(port, &format!("GET {path} HTTP/1.1\r\n"), "")
}

/// A blocking `POST` of `body` on loopback: `(status, body)`.
pub fn post(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let line = format!("POST {path} HTTP/1.1\r\nContent-Length: {}\r\n", body.len());
    request(port, &line, body)
}

/// Sends the request `head` (its first line and any headers) and `body`, reads the answer.
fn request(port: u16, head: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{head}Host: 127.0.0.1\r\nConnection: close\r\n\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

/// A chunked body's data (a large answer comes chunked over HTTP/1.1).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Writes `openmetrics` into blocks under `dir/data` with promtool; returns the data directory.
fn backfill(dir: &Path, openmetrics: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    let input = dir.join("data.om");
    std::fs::write(&input, openmetrics).expect("write OpenMetrics");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .expect("promtool runs; ./scripts/test.sh installs it");
    assert!(
        out.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

/// Starts Prometheus on data backfilled from `openmetrics` (see [`crate::traffic`]).
///
/// The data goes through `promtool tsdb create-blocks-from openmetrics` into a fresh data
/// directory before the server starts. Retention is 100 years, so old test data stays.
pub fn prometheus(openmetrics: &str) -> Service {
    prometheus_with_rules(openmetrics, None)
}

/// Like [`prometheus`], with a rule file loaded.
pub fn prometheus_with_rules(openmetrics: &str, rules: Option<&Path>) -> Service {
    let dir = TempDir::new().expect("temp dir");
    let data = backfill(dir.path(), openmetrics);
    let mut config = String::from("global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\n");
    if let Some(rules) = rules {
        config.push_str(&format!("rule_files:\n  - {}\n", rules.display()));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write config");
    Service::spawn("prometheus", dir, Ready::Http("/-/ready"), || {
        let port = free_port();
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=100y".into(),
            "--web.enable-lifecycle".into(),
        ];
        (port, args)
    })
}

/// Starts Prometheus serving HTTPS with `tls`'s server certificate.
pub fn prometheus_tls(openmetrics: &str, tls: &crate::tls::TestCa) -> Service {
    let dir = TempDir::new().expect("temp dir");
    let data = backfill(dir.path(), openmetrics);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            tls.server_cert.display(),
            tls.server_key.display()
        ),
    )
    .expect("write web config");
    let mut service = Service::spawn(
        "prometheus",
        dir,
        Ready::LogLine("Server is ready to receive web requests."),
        || {
            let port = free_port();
            let args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--web.config.file={}", web.display()),
                "--storage.tsdb.retention.time=100y".into(),
            ];
            (port, args)
        },
    );
    service.url = format!("https://127.0.0.1:{}", service.port);
    service
}

/// Starts a Pushgateway.
pub fn pushgateway() -> Service {
    let dir = TempDir::new().expect("temp dir");
    // Debian's build persists to /var/lib/prometheus by default; each test gets its own file.
    let persistence = dir.path().join("pushgateway.data");
    Service::spawn(
        "prometheus-pushgateway",
        dir,
        Ready::Http("/-/ready"),
        || {
            let port = free_port();
            let args = vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--persistence.file={}", persistence.display()),
            ];
            (port, args)
        },
    )
}

/// Starts an Alertmanager with one do-nothing receiver.
pub fn alertmanager() -> Service {
    let dir = TempDir::new().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .expect("write config");
    let storage = dir.path().join("data");
    Service::spawn(
        "prometheus-alertmanager",
        dir,
        Ready::Http("/-/ready"),
        || {
            let port = free_port();
            let cluster = free_port();
            let args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", storage.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--cluster.listen-address=127.0.0.1:{cluster}"),
            ];
            (port, args)
        },
    )
}

/// Waits up to `within` for `GET path` on `port` to answer 200 (a probe such as `/readyz`);
/// panics, naming the exit status, if `child` exits first, or if the time runs out.
pub fn wait_until_ready(port: u16, path: &str, child: &mut std::process::Child, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok((200, _)) = get(port, path) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the process serving port {port} exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("port {port} did not answer 200 on {path} within {within:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_before_the_server_binds_it_is_picked_again() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let dir = TempDir::new().unwrap();
        let persistence = dir.path().join("pushgateway.data");
        let picks = std::cell::Cell::new(0);
        let service = Service::spawn(
            "prometheus-pushgateway",
            dir,
            Ready::Http("/-/ready"),
            || {
                picks.set(picks.get() + 1);
                let port = if picks.get() == 1 { busy } else { free_port() };
                let args = vec![
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    format!("--persistence.file={}", persistence.display()),
                ];
                (port, args)
            },
        );
        assert_eq!(picks.get(), 2);
        assert_ne!(service.port, busy);
        assert!(matches!(get(service.port, "/-/ready"), Ok((200, _))));
    }
}
