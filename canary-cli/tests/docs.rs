//! The README and the book (`docs/src`) stay true: the generated reference pages are the code's
//! (`CANARY_UPDATE_DOCS=1` rewrites them), every configuration snippet passes `canary config
//! check`, every `canary` command line parses, and every link to a page or a heading resolves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::stderr;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The README and every page of the book, by path relative to the repository.
fn pages() -> Vec<(PathBuf, String)> {
    let mut out = vec![(PathBuf::from("README.md"), read(&root().join("README.md")))];
    let mut stack = vec![root().join("docs/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let rel = path.strip_prefix(root()).unwrap().to_path_buf();
                out.push((rel, read(&path)));
            }
        }
    }
    out.sort();
    assert!(out.len() > 10, "the book has its pages");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of `text` whose info string is `lang` (or starts with it and a comma or a
/// space), without the fence's indentation: a block in a list item is indented.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inside a fence: whether it is wanted, its indentation, its lines.
    let mut fence: Option<(bool, usize, Vec<String>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let is_fence = trimmed.starts_with("```");
        match fence.take() {
            Some((true, _, body)) if is_fence => out.push(body.join("\n") + "\n"),
            Some((false, _, _)) if is_fence => {}
            Some((wanted, at, mut body)) => {
                body.push(line.get(at..).unwrap_or("").to_owned());
                fence = Some((wanted, at, body));
            }
            None if is_fence => {
                let info = &trimmed[3..];
                let wanted = info
                    .strip_prefix(lang)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([',', ' ']));
                fence = Some((wanted, indent, Vec::new()));
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_generated_reference_pages_are_the_codes() {
    let update = std::env::var_os("CANARY_UPDATE_DOCS").is_some();
    for (file, text) in [
        ("docs/src/reference/cli.md", canary_cli::reference::cli()),
        (
            "docs/src/reference/config.md",
            canary_cli::reference::config(),
        ),
        ("docs/src/reference/http.md", canary_cli::reference::http()),
        (
            "docs/src/reference/openapi.json",
            canary_cli::reference::openapi(),
        ),
    ] {
        let path = root().join(file);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{file} is stale: run `CANARY_UPDATE_DOCS=1 cargo test -p canary-cli --test docs` and commit it"
        );
    }
    // What they say is the code's: every subcommand and every top-level key is there.
    let cli = canary_cli::reference::cli();
    for sub in [
        "analyze",
        "run",
        "report",
        "config check",
        "serve",
        "backtest",
    ] {
        assert!(cli.contains(&format!("## `canary {sub}`")), "{sub}");
    }
    let config = canary_cli::reference::config();
    for key in ["prometheus", "validator", "sequential", "serve", "slack"] {
        assert!(config.contains(&format!("## `{key}`")), "{key}");
    }
    assert!(
        config.contains("| `max_concurrency` | integer |"),
        "{config}"
    );
}

#[test]
fn every_configuration_snippet_passes_config_check() {
    let mut checked = 0;
    for (page, text) in pages() {
        for snippet in blocks(&text, "yaml") {
            // Kubernetes manifests and workflows are not canary's configuration.
            if snippet.contains("apiVersion:") || snippet.contains("runs-on:") {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("canary.yaml");
            std::fs::write(&file, &snippet).unwrap();
            let mut command = common::command();
            command.args(["config", "check", file.to_str().unwrap()]);
            // A snippet's `${NAME}` is the reader's secret: give it a value.
            for name in snippet
                .split("${")
                .skip(1)
                .filter_map(|s| s.split('}').next())
            {
                command.env(name, "https://hooks.slack.test/services/T0/B0/x");
            }
            let out = command.output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {snippet}\n{}",
                page.display(),
                stderr(&out)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} snippets");
}

/// Splits a shell command line into words: quotes, and `$VAR` kept as text.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Subcommands that need no store or cluster: a command line of the book that uses one is run.
const RUNS_OFFLINE: [&str; 5] = ["config", "completions", "man", "--version", "--help"];

#[test]
fn every_canary_command_line_parses_and_the_offline_ones_run() {
    use clap::CommandFactory;
    let binary = Path::new(env!("CARGO_BIN_EXE_canary"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Where a reader would run them: a directory with a canary.yaml.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/canary.yaml"),
        dir.path().join("canary.yaml"),
    )
    .unwrap();
    let (mut parsed, mut ran) = (0, 0);
    for (page, text) in pages() {
        for block in blocks(&text, "sh") {
            // Lines continued with a backslash are one command.
            let joined = block.replace("\\\n", " ");
            for line in joined.lines() {
                let whole = line.split(" #").next().unwrap().trim();
                // A pipeline or a redirection: the command is what comes before it.
                let command = whole.split(['|', '>', '<']).next().unwrap().trim();
                if !command.starts_with("canary ") {
                    continue;
                }
                let argv = words(command);
                let result = canary_cli::Cli::command().try_get_matches_from(&argv);
                if let Err(e) = &result {
                    assert!(
                        !e.use_stderr(),
                        "{}: `{command}` does not parse: {e}",
                        page.display()
                    );
                }
                parsed += 1;
                if RUNS_OFFLINE.contains(&argv[1].as_str()) {
                    let out = std::process::Command::new("bash")
                        .args(["-c", whole])
                        .env("PATH", &path)
                        .current_dir(dir.path())
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}: `{whole}` failed: {}",
                        page.display(),
                        stderr(&out)
                    );
                    ran += 1;
                }
            }
        }
    }
    assert!(parsed >= 15, "only {parsed} command lines");
    assert!(ran >= 4, "only {ran} command lines ran");
}

/// mdBook's anchor of a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_to_a_page_or_a_heading_resolves() {
    let pages = pages();
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (page, text) in &pages {
        let mut fenced = false;
        let set = anchors.entry(page.clone()).or_default();
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if !fenced && line.starts_with('#') {
                if let Some((_, heading)) = line.split_once("# ") {
                    set.insert(slug(heading));
                }
            }
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for (page, text) in &pages {
        let dir = page.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let link = &rest[..end];
            if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                normalize(&dir.join(file))
            };
            checked += 1;
            if !root().join(&target).exists() {
                broken.push(format!(
                    "{}: {link} (no file {})",
                    page.display(),
                    target.display()
                ));
                continue;
            }
            if !anchor.is_empty() && !anchors.get(&target).is_some_and(|a| a.contains(anchor)) {
                broken.push(format!("{}: {link} (no heading #{anchor})", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links");
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_apis_version_pattern_is_what_a_version_accepts() {
    let schema = serde_json::json!({
        "type": "string",
        "pattern": canary_core::Version::PATTERN,
        "maxLength": canary_core::Version::MAX_LEN,
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    let alphabet: Vec<char> = "aZ09_.-,=/ \n$é\u{0}".chars().collect();
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut accepted = 0;
    for case in 0..5000 {
        let len = if case % 50 == 0 {
            120 + next() % 12
        } else {
            next() % 8
        };
        let text: String = (0..len)
            .map(|_| alphabet[next() % alphabet.len()])
            .collect();
        let by_version = canary_core::Version::new(text.clone()).is_ok();
        let by_schema = validator.is_valid(&serde_json::Value::String(text.clone()));
        assert_eq!(by_version, by_schema, "{text:?}");
        accepted += usize::from(by_version);
    }
    assert!(accepted > 100, "too few valid versions drawn: {accepted}");
    // The length bound, which random text over this alphabet never reaches valid.
    for (text, valid) in [("a".repeat(128), true), ("a".repeat(129), false)] {
        let value = serde_json::Value::String(text.clone());
        assert_eq!(validator.is_valid(&value), valid);
        assert_eq!(canary_core::Version::new(text).is_ok(), valid);
    }
}
