//! Every word canary prints is true: a newcomer's afternoon, replayed. A real Prometheus holds
//! production `v1` on four pods and three canaries on one pod each for the last 40 minutes:
//! `v2` healthy (the same rates as production), `v3` with 5 % errors against production's 1 %,
//! `v-idle` exporting series but serving nothing. The release's binary judges them; every
//! rendering (JSON, table, Markdown, HTML) and the exit code must state the same decision, the
//! same numbers and the same times, and those numbers must match the data loaded here.

use std::process::{Command, Output};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, Traffic};

/// Requests per second of each pod, canaries and production's alike.
const RPS: f64 = 5.0;
const STEP: i64 = 15;

struct Store {
    prometheus: Service,
    /// The data's last sample.
    end: i64,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let end = now_secs() - 3;
        let pod = |version: &str, pod: &str, errors: f64| Traffic {
            pod: Some(pod.into()),
            error_ratio: errors,
            ..Traffic::healthy(version, RPS)
        };
        let mut idle = pod("v-idle", "i1", 0.01);
        idle.rps = 0.0;
        let traffic = [
            pod("v1", "p1", 0.01),
            pod("v1", "p2", 0.01),
            pod("v1", "p3", 0.01),
            pod("v1", "p4", 0.01),
            pod("v2", "c1", 0.01),
            pod("v3", "c2", 0.05),
            idle,
        ];
        let text = openmetrics(&traffic, 2400, STEP, end);
        Store {
            prometheus: testkit::services::prometheus(&text),
            end,
        }
    })
}

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("PROMETHEUS_URL")
        .output()
        .unwrap()
}

/// `canary analyze` on the store: the baseline `v1`, the canary and `extra`, printed as `output`.
fn analyze(version: &str, extra: &[&str], output: &str) -> Output {
    let url = &store().prometheus.url;
    let mut args = vec![
        "analyze",
        "--prometheus-url",
        url,
        "--baseline",
        "v1",
        "--canary",
        version,
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    canary(&args)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(o), String::from_utf8_lossy(&o.stderr)))
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Every rendering of one analysis, with its exit code.
struct Renderings {
    json: Value,
    table: String,
    markdown: String,
    html: String,
    code: i32,
}

fn renderings(version: &str, extra: &[&str]) -> Renderings {
    let j = analyze(version, extra, "json");
    let code = j.status.code().unwrap();
    let r = Renderings {
        json: json(&j),
        table: text(&analyze(version, extra, "table")),
        markdown: text(&analyze(version, extra, "markdown")),
        html: text(&analyze(version, extra, "html")),
        code,
    };
    for other in [
        analyze(version, extra, "table"),
        analyze(version, extra, "markdown"),
    ] {
        assert_eq!(
            other.status.code(),
            Some(code),
            "one exit code for every output"
        );
    }
    r
}

/// The one check across renderings: the same decision (its word, its exit code), the same
/// sample counts, and for a judge the same heading (its instants) everywhere.
fn agree(r: &Renderings) {
    let word = r.json["decision"].as_str().unwrap();
    let code = match word {
        "proceed" => 0,
        "rollback_auto" => 1,
        "rollback_manual" => 2,
        "continue" => 4,
        other => panic!("no such decision: {other}"),
    };
    assert_eq!(r.code, code, "{word}");
    let upper = word.to_uppercase();
    let banner = if word == "continue" {
        "continue:".to_owned()
    } else {
        upper.clone()
    };
    assert!(
        r.table.contains(&banner),
        "{word} not in the table:\n{}",
        r.table
    );
    assert!(
        r.markdown.contains(&upper)
            || r.markdown.contains(&format!("**{word}"))
            || r.markdown.contains(&banner),
        "{word} not in the Markdown:\n{}",
        r.markdown
    );
    assert!(
        r.html.contains(&format!("class=\"banner {word}\"")),
        "{word} not the HTML banner"
    );
    for arm in ["baseline_samples", "canary_samples"] {
        if let Some(n) = r.json[arm].as_f64() {
            let n = canary_core::format::num(n);
            for (what, page) in [
                ("table", &r.table),
                ("markdown", &r.markdown),
                ("html", &r.html),
            ] {
                assert!(page.contains(&n), "{arm} {n} not in the {what}");
            }
        }
    }
    if let Some(heading) = r.json["retrospective"]["heading"].as_str() {
        assert!(r.table.starts_with(heading), "{heading}\n{}", r.table);
        assert!(r.markdown.contains(heading), "{heading}");
        let escaped = heading
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(r.html.contains(&escaped), "{heading}");
    }
}

#[test]
fn a_healthy_canary_not_decided_yet_is_continue_exit_4_with_each_metrics_standing() {
    let r = renderings("v2", &["--judge", "sequential"]);
    agree(&r);
    assert_eq!(r.json["decision"], "continue", "{}", r.json);
    assert_eq!(r.code, 4);
    assert!(!r.table.contains("rollback_manual"), "{}", r.table);
    assert!(!r.html.contains("ROLLBACK MANUAL"));
    // Per metric: where it stands, and for an open one what it needs and when.
    let rows = r.json["comparisons"].as_array().unwrap();
    assert!(rows.len() >= 5, "{rows:?}");
    let open: Vec<&Value> = rows.iter().filter(|c| c["status"] == "open").collect();
    assert!(
        !open.is_empty(),
        "40 minutes of 5 req/s leave something open: {rows:?}"
    );
    for o in &open {
        let why = o["no_data_reason"].as_str().unwrap();
        assert!(why.contains("straddles the margin"), "{why}");
        assert!(
            why.contains("into the run") || why.contains("maximum duration"),
            "{why}"
        );
        let metric = o["metric"].as_str().unwrap();
        assert!(
            r.table.contains(&format!("- {metric}: open: ")),
            "{}",
            r.table
        );
        assert!(r.html.contains(&format!("{metric}: open: ")));
    }
    assert!(r.table.contains("where each metric stands"));
    // `canary serve` answers the same data the same way, with the same standing per metric.
    let port = testkit::free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "serve",
            "--prometheus-url",
            &store().prometheus.url,
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        if let Ok((200, body)) = testkit::services::get(port, "/v1/analysis?baseline=v1&canary=v2")
        {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "canary serve did not answer"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["decision"], "continue", "{answer}");
    let served: Vec<&str> = answer["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metric"].as_str().unwrap())
        .collect();
    let analysed: Vec<&str> = rows.iter().map(|c| c["metric"].as_str().unwrap()).collect();
    assert_eq!(served, analysed);
}

#[test]
fn a_rollback_states_its_instant_its_own_rule_and_the_counts_it_saw() {
    let r = renderings("v3", &["--judge", "sequential"]);
    agree(&r);
    assert_eq!(r.json["decision"], "rollback_auto", "{}", r.json);
    let retro = &r.json["retrospective"];
    let (start, decided) = (instant(&retro["start"]), instant(&retro["decided_at"]));
    let end = instant(&retro["end"]);
    assert!(start < decided && decided < end, "{retro}");
    let into = (decided - start).num_seconds();
    assert!(
        into <= 300,
        "errors × 5 are caught within minutes: {into} s"
    );
    // The heading and the chart span the decision, not the whole run.
    let heading = retro["heading"].as_str().unwrap();
    assert!(
        heading.contains(&format!(
            "decided at {}",
            canary_core::format::instant(decided)
        )),
        "{heading}"
    );
    // The sample counts are the requests the judge saw: 5 req/s from the run's start to its
    // decision (one scrape of slack each side), the baseline's four pods 4 times as many.
    let seen = |arm: &str| {
        r.json[arm]
            .as_f64()
            .unwrap_or_else(|| panic!("{arm}: {}", r.json))
    };
    let expected = RPS * into as f64;
    assert!(
        (seen("canary_samples") - expected).abs() <= RPS * STEP as f64,
        "{} vs {expected}",
        seen("canary_samples")
    );
    assert!((seen("baseline_samples") - 4.0 * expected).abs() <= 4.0 * RPS * STEP as f64);
    // Every metric stays in the report: those the warm-up had not reached are open, saying so.
    let rows = r.json["comparisons"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|c| c["metric"].as_str().unwrap()).collect();
    for m in ["latency_p99", "error_rate", "model_confidence"] {
        assert!(names.contains(&m), "{m} vanished: {names:?}");
    }
    // The judge's own rule, in its own terms: no policy ratio in the threshold column.
    let errors = rows.iter().find(|c| c["metric"] == "error_rate").unwrap();
    assert!(errors["rollback_threshold"].is_null(), "{errors}");
    let rule = errors["rule"].as_str().unwrap();
    assert!(rule.contains("worse once surely beyond × 1.1"), "{rule}");
    for page in [&r.table, &r.markdown] {
        assert!(page.contains(rule), "{page}");
        assert!(!page.contains("rollback 1.1×"), "{page}");
        assert!(
            !page.contains("not reached for what matters"),
            "a rollback is not a power statement: {page}"
        );
    }
    // The error rates are the data's: 5 % against 1 %.
    let value = |k: &str| errors[k].as_f64().unwrap();
    assert!(
        (value("canary") - 5.0).abs() < 0.1 && (value("baseline") - 1.0).abs() < 0.05,
        "{errors}"
    );
    // The query cited is PromQL the store runs.
    let query = errors["canary_query"].as_str().unwrap();
    let promql = query
        .split("errors = ")
        .nth(1)
        .and_then(|q| q.split(';').next())
        .unwrap_or_else(|| panic!("no errors query in {query}"));
    assert!(promql.contains("version=\"v3\""), "{promql}");
    let path = format!("/api/v1/query?query={}", urlencode(promql));
    let (status, body) = testkit::services::get(store().prometheus.port, &path).unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    assert!(
        !answer["data"]["result"].as_array().unwrap().is_empty(),
        "{promql}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_run_start_holds_from_call_to_call_and_the_span_is_the_one_asked_for() {
    let until = store().end - 600;
    let until_text = until.to_string();
    let earlier = (until - 45).to_string();
    let ask = |u: &str| {
        json(&analyze(
            "v2",
            &["--judge", "sequential", "--until", u],
            "json",
        ))
    };
    let (a, b) = (ask(&until_text), ask(&earlier));
    let c = json(&analyze("v2", &["--judge", "sequential"], "json"));
    let start = |v: &Value| instant(&v["retrospective"]["start"]);
    assert_eq!(start(&a), start(&b));
    assert_eq!(start(&a), start(&c));
    // The evidence ends at the last step at or before --until, and the heading says so.
    let end = instant(&a["retrospective"]["end"]);
    let asked = DateTime::from_timestamp(until, 0).unwrap();
    assert!(
        end <= asked && (asked - end).num_seconds() < STEP,
        "{end} for {asked}"
    );
    let heading = a["retrospective"]["heading"].as_str().unwrap();
    assert!(
        heading.contains(&canary_core::format::instant(end)),
        "{heading}"
    );
    assert!(
        !heading.contains("before the"),
        "the span is the one asked for: {heading}"
    );
}

#[test]
fn a_version_the_store_never_had_is_a_configuration_error_that_lists_the_versions() {
    for extra in [&[][..], &["--judge", "sequential"][..]] {
        let o = analyze("v9", extra, "table");
        assert_eq!(o.status.code(), Some(3), "{extra:?}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("--canary v9"), "{e}");
        for have in ["\"v1\"", "\"v2\"", "\"v3\""] {
            assert!(e.contains(have), "{e}");
        }
        assert!(!e.contains("send more traffic"), "{e}");
    }
    // A version with series but no traffic is not a typo: manual review, as before.
    let idle = analyze("v-idle", &[], "json");
    assert_eq!(
        idle.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&idle.stderr)
    );
    let r = renderings("v-idle", &[]);
    agree(&r);
}

#[test]
fn the_guides_single_look_agrees_across_renderings_with_the_data() {
    let r = renderings("v2", &[]);
    agree(&r);
    assert_eq!(r.json["decision"], "proceed", "{}", r.json);
    // Five minutes of one pod at 5 req/s, and of four.
    let n = r.json["canary_samples"].as_f64().unwrap();
    assert!((n - RPS * 300.0).abs() <= RPS * STEP as f64, "{n}");
    let n = r.json["baseline_samples"].as_f64().unwrap();
    assert!(
        (n - 4.0 * RPS * 300.0).abs() <= 4.0 * RPS * STEP as f64,
        "{n}"
    );
    let r = renderings("v3", &[]);
    agree(&r);
    assert_eq!(r.json["decision"], "rollback_auto");
}

#[test]
fn equal_series_leave_the_baseline_visible_in_the_chart() {
    let page = analyze("v2", &[], "html");
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("a.html");
    std::fs::write(&html, &page.stdout).unwrap();
    let shot = dir.path().join("a.png");
    testkit::screenshot::screenshot(&html, &shot, dir.path(), (1100, 1500));
    let (_, _, px) = testkit::screenshot::pixels(&shot);
    let count = |c: [u8; 3]| {
        px.iter()
            .filter(|p| testkit::screenshot::near(**p, c, 40))
            .count()
    };
    // v2's series equal production's exactly: both must still be seen.
    let (baseline, canary) = (count([0x3b, 0x6e, 0xa8]), count([0xe0, 0x7b, 0x1f]));
    assert!(canary > 500, "no canary line");
    // Drawn wide under the narrow canary, the baseline shows on both sides of it: more of
    // its colour than of the canary's (drawn alike, the canary would hide it).
    assert!(
        baseline > canary,
        "the baseline is hidden under the canary: {baseline} vs {canary}"
    );
}

#[test]
fn help_examples_survive_a_pipe_and_the_help_says_what_the_command_does() {
    let o = canary(&["analyze", "--help"]);
    let help = text(&o);
    assert!(help.contains("4 continue"), "{help}");
    assert!(!help.contains("the command's"), "{help}");
    assert!(
        help.contains("Without --judge: the guide's threshold policy"),
        "{help}"
    );
    for sub in ["analyze", "run", "backtest", "serve", "config"] {
        let help = text(&canary(&[sub, "--help"]));
        let lines: Vec<&str> = help.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            // A line that continues a command follows one ending in `\`; no other line of an
            // example starts with a flag.
            if l.trim_start().starts_with("--") && l.starts_with("      --") && i > 0 {
                let before = lines[i - 1].trim_end();
                assert!(
                    before.ends_with('\\')
                        || !lines[..i].iter().any(|x| x.starts_with("Examples:")),
                    "{sub}: a command cut at line {i}: {before:?} / {l:?}"
                );
            }
        }
    }
}

#[test]
fn a_url_without_a_scheme_says_the_value_and_suggests_http() {
    let o = canary(&[
        "analyze",
        "--prometheus-url",
        "127.0.0.1:9091",
        "--baseline",
        "v1",
        "--canary",
        "v2",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("\"127.0.0.1:9091\"") && e.contains("http://127.0.0.1:9091"),
        "{e}"
    );
    assert!(!e.contains("[unparsable URL]"), "{e}");
    let o = canary(&[
        "analyze",
        "--prometheus-url",
        "admin:hunter2@prom:9090",
        "--baseline",
        "v1",
        "--canary",
        "v2",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn durations_read_alike_in_flags_and_files_and_one_max_duration_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let ok = file("ok.yaml", "prometheus:\n  url: http://x:9090\n  timeout: 30s\nvalidator:\n  max_duration: 2h\n  warmup: 5m\n");
    let o = canary(&["config", "check", &ok]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = file(
        "bad.yaml",
        "prometheus:\n  url: http://x:9090\n  timeout: thirty\n",
    );
    let e = String::from_utf8_lossy(&canary(&["config", "check", &bad]).stderr).into_owned();
    assert!(
        e.contains("prometheus.timeout") && e.contains("like 90s"),
        "{e}"
    );
    assert!(!e.contains("f64"), "{e}");
    // `--window 2d` is a window like any other (the data holds 40 minutes: manual review).
    let o = analyze("v2", &["--window", "2d"], "json");
    assert_ne!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let two = file("two.yaml", "sequential:\n  max_duration: 7200\n");
    let o = canary(&["config", "check", &two]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("validator.max_duration"));
}

#[test]
fn a_dry_run_says_nothing_was_deployed() {
    let o = canary(&[
        "run",
        "--version",
        "v1.3.0",
        "--production-version",
        "v1",
        "--dry-run",
        "--prometheus-url",
        &store().prometheus.url,
        "--quiet",
    ]);
    let out = text(&o);
    assert!(
        out.contains("deployed canary v1.3.0 — printed, not run (dry run)"),
        "{out}"
    );
    assert!(!out.contains("— ok"), "{out}");
    assert!(out.contains("nothing was deployed"), "{out}");
    assert!(!out.contains("minimum 0"), "{out}");
}
