//! The config file (`canary.yaml`): one place for what the flow needs. Unknown keys are
//! errors; flags override the file, the file overrides the defaults.
//!
//! Secrets never sit in the file: `${NAME}` is replaced by the environment variable `NAME`
//! (`$$` is a literal `$`), and a secret field may be given as `<field>_file: PATH` instead
//! (`bearer_token_file`, `password_file`, `webhook_url_file`, `proxy_file`), read from a
//! mounted file. Either way the value lands in a redacted secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use canary_core::{
    MetricSpec, Notifier, Redactor, RollbackPolicy, RollbackThresholds, Secret, ValidatorConfig,
};
use canary_helm::HelmConfig;
use canary_notify::{AlertmanagerNotifier, WebhookNotifier, WebhookPayload};
use canary_prometheus::PrometheusConfig;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::JudgeName;

/// The whole configuration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(title = "canary.yaml")]
pub struct CanaryConfig {
    /// How to reach Prometheus, and the queries.
    pub prometheus: PrometheusConfig,
    /// The guide's thresholds.
    pub thresholds: RollbackThresholds,
    /// Your own metrics, judged next to the built-ins (their queries go under
    /// `prometheus.queries`).
    pub metrics: Vec<MetricSpec>,
    /// Warm-up, window, progressive weights, manual review.
    pub validator: ValidatorConfig,
    /// How to run helm.
    pub helm: HelmConfig,
    /// Which judge decides, if the file says. Unsaid, the `canary` command and `canary serve`
    /// use the sequential judge ([`CanaryConfig::judge`]); Python's
    /// `CanaryValidator.from_config` keeps the guide's single look, as the guide's API does.
    pub judge: Option<JudgeName>,
    /// The sequential judge's parameters (`judge: sequential`), e.g. what matters per metric:
    /// `matters: {error_rate: 1.5}` promotes early only once errors × 1.5 would have been
    /// caught with 95 % power.
    pub sequential: canary_core::judge::SequentialParameters,
    /// Flagger's analysis parameters (`judge: flagger`), e.g. as `canary backtest --calibrate`
    /// writes them.
    pub flagger: canary_core::judge::FlaggerParameters,
    /// Argo Rollouts' analysis parameters (`judge: argo`).
    pub argo: canary_core::judge::ArgoParameters,
    /// Kayenta's judge parameters (`judge: kayenta`), e.g. `confidence_level`.
    pub kayenta: canary_core::judge::KayentaParameters,
    /// Regions analysed and deployed one after another; a rollback in one rolls back all.
    /// Empty: one region, with `prometheus` and `helm` as they are.
    pub regions: Vec<RegionConfig>,
    /// Slack, as the guide posts decisions.
    pub slack: Option<SlackConfig>,
    /// JSON webhooks that receive every decision.
    pub webhooks: Vec<WebhookConfig>,
    /// Alertmanager, alerted when a canary is rolled back or held.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// `canary serve`: listen address, auth, TLS, limits.
    pub serve: canary_serve::ServeConfig,
}

/// One region: its own Prometheus and cluster; what it leaves out comes from the top level.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The region's name, in reports and helm's logs (unique).
    pub name: String,
    /// The region's Prometheus URL (default: `prometheus.url`); the other Prometheus settings
    /// are shared.
    pub prometheus_url: Option<String>,
    /// `--kube-context` for the region's cluster.
    pub kube_context: Option<String>,
    /// `--kubeconfig` for the region's cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `--namespace` in the region (default: `helm.namespace`).
    pub namespace: Option<String>,
}

/// Slack.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL (a secret).
    pub webhook_url: Secret,
}

/// A JSON webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name in reports and logs.
    pub name: String,
    /// Where to post (a secret: URLs often carry a token).
    pub url: Secret,
    /// Extra headers, e.g. `Authorization` (values are secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The whole report, or the deciding evaluation.
    #[serde(default)]
    pub payload: WebhookPayload,
}

/// Alertmanager.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's URL, e.g. `http://alertmanager:9093`.
    pub url: Secret,
    /// Static labels on every alert, e.g. `service: apex-inference`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Secret fields that may be read from a file instead: `<field>_file: PATH`.
const FILE_FIELDS: [&str; 6] = [
    "bearer_token",
    "password",
    "webhook_url",
    "proxy",
    "url",
    "auth_token",
];

/// The JSON Schema of the config file, generated from the types above (and the core's and the
/// adapters' configuration types): `canary config schema`.
pub fn schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(CanaryConfig))
        .unwrap_or(serde_json::Value::Null);
    add_file_fields(&mut schema);
    schema
}

/// Every secret field may also be given as `<field>_file`; the schema says so, or editors
/// would flag the file form as an unknown key.
fn add_file_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get_mut("properties") {
                for field in FILE_FIELDS {
                    if props.contains_key(field) {
                        props.insert(
                            format!("{field}_file"),
                            serde_json::json!({
                                "type": "string",
                                "description": format!("A file whose contents are `{field}` (e.g. a mounted secret).")
                            }),
                        );
                    }
                }
                // Either form satisfies a required secret.
                if let Some(serde_json::Value::Array(required)) = map.get_mut("required") {
                    required.retain(|r| !r.as_str().is_some_and(|r| FILE_FIELDS.contains(&r)));
                }
            }
            for v in map.values_mut() {
                add_file_fields(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_file_fields),
        _ => {}
    }
}

/// The commented example (`examples/canary.yaml`): the guide's setup.
pub const EXAMPLE: &str = include_str!("../canary.yaml");

/// The largest config file read: 1 MiB (the example is 5 kB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The largest secret file read (`*_file`): 16 KiB; a token is a few hundred bytes.
pub const MAX_SECRET_BYTES: u64 = 16 << 10;
/// The largest report `canary report` reads: 64 MiB.
pub const MAX_REPORT_BYTES: u64 = 64 << 20;
/// The deepest nesting of `[` and `{` a config may have.
pub const MAX_CONFIG_NESTING: usize = 32;

/// Reads `path` as text if it is a regular file of at most `limit` bytes; a FIFO, a device
/// (`/dev/zero`), a directory or a larger file is an error naming `what` and the limit, read
/// no further than the limit.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<String, String> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| format!("cannot read {what} {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "{what} {} is not a regular file (a FIFO, device or directory is never read)",
            path.display()
        ));
    }
    let too_large = || {
        format!(
            "{what} {} is larger than {} bytes, the most read",
            path.display(),
            limit
        )
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| format!("{what} {} is not UTF-8 text", path.display()))
}

/// Reads and checks `path`. The error is one line naming the file, and where it can, the line
/// and column and what is wrong there.
pub fn load(path: &Path) -> Result<CanaryConfig, String> {
    let text = read_limited(path, MAX_CONFIG_BYTES, "the config")?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Refuses flow collections nested deeper than [`MAX_CONFIG_NESTING`] before YAML parses
/// them: deep nesting costs the parser far more than its size.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let code = &line[..comment_start(line)];
        let (mut single, mut double, mut previous) = (false, false, ' ');
        for c in code.chars() {
            match c {
                '\'' if !double => single = !single,
                '"' if !single && previous != '\\' => double = !double,
                '[' | '{' if !single && !double => {
                    depth += 1;
                    if depth > MAX_CONFIG_NESTING {
                        return Err(format!(
                            "line {}: nested deeper than {MAX_CONFIG_NESTING} levels",
                            n + 1
                        ));
                    }
                }
                ']' | '}' if !single && !double => depth = depth.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    Ok(())
}

/// Checks config text (see [`load`]).
pub fn parse(text: &str) -> Result<CanaryConfig, String> {
    // What came from the environment or a file may be a secret, and a message about a value
    // in the wrong place would quote it: every such value is scrubbed from the errors.
    let mut read = Redactor::default();
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {MAX_CONFIG_BYTES} bytes, the most a config may be"
        ));
    }
    check_nesting(text)?;
    let text = interpolate(text, &mut read)?;
    let text = secret_files(&text, &mut read)?;
    // The path names the key at fault ("validator.warmup"); serde_yaml alone names only
    // the enclosing section of a value it could not convert.
    let checked = serde_path_to_error::deserialize::<_, CanaryConfig>(
        serde_yaml::Deserializer::from_str(&text),
    )
    .map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_location(&inner.to_string()).to_owned();
        // serde_yaml prefixes some messages with the section already.
        let message = match message.strip_prefix(&format!("{path}: ")) {
            Some(rest) => rest.to_owned(),
            None => message
                .split_once(": ")
                .filter(|(section, _)| path.starts_with(section) && *section != path)
                .map_or(message.clone(), |(_, rest)| rest.to_owned()),
        };
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        match inner.location() {
            Some(l) => format!("line {}, column {}: {at}{message}", l.line(), l.column()),
            None => format!("{at}{message}"),
        }
    })
    .and_then(|mut config| {
        config
            .validator
            .validate()
            .map_err(|e| format!("validator: {e}"))?;
        // One maximum duration: the run's, which every judge obeys.
        if config.sequential.max_duration
            != canary_core::judge::SequentialParameters::default().max_duration
        {
            return Err(
                "sequential.max_duration: the run's maximum duration is validator.max_duration, \
                 which every judge obeys; set that instead"
                    .to_owned(),
            );
        }
        config.sequential.max_duration = config.validator.max_duration;
        config.prometheus.check_limits().map_err(|e| match e {
            canary_prometheus::Error::InvalidConfig { field, reason } => {
                format!("prometheus.{field}: {reason}")
            }
            other => format!("prometheus: {other}"),
        })?;
        config.serve.validate()?;
        config.policy()?;
        config.sequential.validate().map_err(|e| match e {
            canary_core::Error::InvalidConfig { field, reason } => {
                format!("sequential.{field}: {reason}")
            }
            other => format!("sequential: {other}"),
        })?;
        let judges: [(&str, &dyn canary_core::judge::JudgeFactory); 3] = [
            ("flagger", &config.flagger),
            ("argo", &config.argo),
            ("kayenta", &config.kayenta),
        ];
        for (name, factory) in judges {
            factory.start().map_err(|e| match e {
                canary_core::Error::InvalidConfig { field, reason } => {
                    format!("{name}.{field}: {reason}")
                }
                other => format!("{name}: {other}"),
            })?;
        }
        Ok(config)
    });
    checked.map_err(|e| short(&read.scrub(&e)))
}

/// An error stays one short line, however large the value it quotes.
fn short(message: &str) -> String {
    const MOST: usize = 400;
    let line = message.replace(['\n', '\r'], " ");
    if line.len() <= MOST {
        return line;
    }
    let cut = (0..=MOST)
        .rev()
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes in all)", &line[..cut], line.len())
}

/// The values shorter than this read from the environment are not scrubbed from errors: they
/// are not secrets (a port, a flag), and blanking them would blank line numbers too.
const SHORTEST_SCRUBBED: usize = 6;

/// The Slack webhook: `SLACK_WEBHOOK_URL` (the guide's variable) over the file's.
pub fn slack_webhook(file: Option<&CanaryConfig>) -> Option<Secret> {
    std::env::var("SLACK_WEBHOOK_URL")
        .ok()
        .filter(|h| !h.is_empty())
        .map(Secret::new)
        .or_else(|| {
            file.and_then(|f| f.slack.as_ref())
                .map(|s| s.webhook_url.clone())
        })
}

/// The policy of `file`, or the guide's when there is no config file.
pub fn policy(file: Option<&CanaryConfig>) -> Result<RollbackPolicy, String> {
    file.map_or_else(|| Ok(RollbackPolicy::default()), CanaryConfig::policy)
}

impl CanaryConfig {
    /// The judge the command and the service use: the file's, else the default (sequential).
    pub fn judge(&self) -> JudgeName {
        self.judge.unwrap_or_default()
    }

    /// The file's webhooks and Alertmanager (Slack apart: see [`slack_webhook`]).
    pub fn notifiers(&self) -> Result<Vec<Arc<dyn Notifier>>, String> {
        let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
        let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
        for w in &self.webhooks {
            let mut n = WebhookNotifier::new(&w.name, w.url.clone())
                .map_err(|e| chain(&e))?
                .with_payload(w.payload);
            for (name, value) in &w.headers {
                n = n.with_header(name, value.clone());
            }
            out.push(Arc::new(n));
        }
        if let Some(a) = &self.alertmanager {
            let mut n = AlertmanagerNotifier::new(a.url.expose()).map_err(|e| chain(&e))?;
            for (name, value) in &a.labels {
                n = n.with_label(name, value);
            }
            out.push(Arc::new(n));
        }
        Ok(out)
    }

    /// The policy: the thresholds, the built-in metrics, and the file's own metrics.
    pub fn policy(&self) -> Result<RollbackPolicy, String> {
        let mut policy =
            RollbackPolicy::new(self.thresholds.clone()).map_err(|e| format!("thresholds: {e}"))?;
        for m in &self.metrics {
            policy = policy
                .with_metric(m.clone())
                .map_err(|e| format!("metrics: {e}"))?;
        }
        Ok(policy)
    }
}

/// serde_yaml appends " at line L column C"; the message states it first instead.
fn without_location(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// Replaces `${NAME}` with the environment variable `NAME`; a variable that is not set is an
/// error naming it and its line. A variable's value is one scalar value, whatever it holds:
/// inside a quoted string it is escaped for that string, as a whole plain value it stays a
/// number or plain word if it is one and becomes a double-quoted string otherwise, and within a longer plain value anything YAML would read differently
/// (a newline, ` #`, `: `) is an error asking for quotes. It never adds keys or cuts a value.
fn interpolate(text: &str, read: &mut Redactor) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        // Comments are left alone: an example may mention `${NAME}` without needing it.
        let (code, comment) = line.split_at(comment_start(line));
        let (mut single, mut double) = (false, false);
        let mut i = 0;
        while i < code.len() {
            let rest = &code[i..];
            let c = rest.chars().next().unwrap_or(' ');
            if let Some(tail) = rest.strip_prefix("$$") {
                out.push('$');
                i = code.len() - tail.len();
                continue;
            }
            let Some(body) = rest.strip_prefix("${") else {
                match c {
                    '\'' if !double => single = !single,
                    '"' if !single => double = !double,
                    '\\' if double => {
                        // An escape in a double-quoted string: keep the escaped character.
                        out.push(c);
                        i += 1;
                        if let Some(next) = code[i..].chars().next() {
                            out.push(next);
                            i += next.len_utf8();
                        }
                        continue;
                    }
                    _ => {}
                }
                out.push(c);
                i += c.len_utf8();
                continue;
            };
            let end = body
                .find('}')
                .ok_or_else(|| format!("line {}: an unclosed ${{ in {line:?}", n + 1))?;
            let name = &body[..end];
            let value = std::env::var(name).map_err(|_| {
                format!("line {}: the environment variable {name} is not set", n + 1)
            })?;
            if value.len() >= SHORTEST_SCRUBBED {
                read.add_text(&value);
            }
            let after = &body[end + 1..];
            let spliced = if double {
                let quoted = serde_json::to_string(&value).expect("a string always serializes");
                quoted[1..quoted.len() - 1].to_owned()
            } else if single {
                if value.contains(['\n', '\r']) {
                    return Err(format!(
                        "line {}: ${{{name}}} holds a line break, which a single-quoted value cannot; use double quotes",
                        n + 1
                    ));
                }
                value.replace('\'', "''")
            } else if plain_value_starts(&out) && after.trim().is_empty() {
                // A number or a plain word keeps its YAML type (`timeout: ${T}`); anything
                // else is quoted, so it stays this one value.
                if plain_safe(&value) {
                    value
                } else {
                    serde_json::to_string(&value).expect("a string always serializes")
                }
            } else if value.contains(['\n', '\r', '#']) || value.contains(": ") {
                return Err(format!(
                    "line {}: ${{{name}}} holds characters YAML would read differently inside an unquoted value (a line break, '#', ': '); quote the value",
                    n + 1
                ));
            } else {
                value
            };
            out.push_str(&spliced);
            i = code.len() - after.len();
        }
        out.push_str(comment);
    }
    Ok(out)
}

/// Whether `value` reads back as exactly itself as (part of) a plain YAML scalar: no line
/// break, comment, `: `, surrounding space, or leading indicator character.
fn plain_safe(value: &str) -> bool {
    if value.parse::<f64>().is_ok_and(f64::is_finite) {
        return true;
    }
    !value.is_empty()
        && value.trim() == value
        && !value.contains(['\n', '\r', '#'])
        && !value.contains(": ")
        && !value.ends_with(':')
        && !value.starts_with([
            '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '-', '?',
            ':',
        ])
}

/// Whether what `out` holds so far ends where a plain value starts: after `key: `, `- `, or
/// the indentation of a line.
fn plain_value_starts(out: &str) -> bool {
    let line = out.rsplit('\n').next().unwrap_or("");
    let before = line.trim_end();
    line.len() > before.len() && (before.ends_with(':') || before.ends_with('-'))
        || before.is_empty()
}

/// Where a YAML comment starts on `line` (its length if none): a `#` at the start or after
/// whitespace, outside quotes.
fn comment_start(line: &str) -> usize {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return i,
            _ => {}
        }
        previous = c;
    }
    line.len()
}

/// Replaces `<field>_file: PATH` lines of secret fields with `<field>: "<the file's content>"`,
/// line for line, so that errors keep their line numbers.
fn secret_files(text: &str, read: &mut Redactor) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let field = FILE_FIELDS
            .iter()
            .find(|f| body.starts_with(&format!("{f}_file:")));
        let Some(field) = field else {
            out.push_str(line);
            continue;
        };
        let path = body[field.len() + "_file:".len()..]
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        let secret = read_limited(Path::new(path), MAX_SECRET_BYTES, &format!("{field}_file"))
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let secret = secret.trim_end_matches(['\n', '\r']);
        read.add_text(secret);
        let quoted = serde_json::to_string(secret).expect("a string always serializes");
        out.push_str(&line[..indent]);
        out.push_str(&format!("{field}: {quoted}"));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_a_valid_config() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.helm.release, "apex-inference");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_their_line_and_column() {
        let e = parse("prometheus:\n  url: http://p:9090\n  urll: x\n").unwrap_err();
        assert!(e.starts_with("line 3, column 3: "), "{e}");
        assert!(e.contains("unknown field `urll`"), "{e}");
        let e = parse("validator:\n  warmup: soon\n").unwrap_err();
        assert!(e.starts_with("line 2, column"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_files_and_stay_secret() {
        let dir = std::env::temp_dir().join(format!("canary-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "s3cr3t-token\n").unwrap();
        let text = format!(
            "prometheus:\n  url: http://p:9090\n  bearer_token_file: {}\n",
            token.display()
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.prometheus.bearer_token.as_ref().unwrap().expose(),
            "s3cr3t-token"
        );
        assert!(!format!("{c:?}").contains("s3cr3t"), "redacted in Debug");
        let e = parse("slack:\n  webhook_url: ${CANARY_TEST_SURELY_UNSET_VARIABLE}\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: the environment variable CANARY_TEST_SURELY_UNSET_VARIABLE is not set"
        );
        let e = parse("prometheus:\n  bearer_token_file: /nonexistent/token\n").unwrap_err();
        assert!(
            e.starts_with("line 2: cannot read bearer_token_file /nonexistent/token"),
            "{e}"
        );
        let mut read = Redactor::default();
        assert_eq!(
            interpolate("a $$5 and $x", &mut read).unwrap(),
            "a $5 and $x"
        );
        assert_eq!(
            interpolate("a: 1 # ${UNSET_IN_A_COMMENT}\n", &mut read).unwrap(),
            "a: 1 # ${UNSET_IN_A_COMMENT}\n"
        );
        // A secret in the wrong place is quoted by the parser's message: it is scrubbed.
        std::env::set_var("CANARY_CONFIG_TEST_SECRET", "hunter2-secret");
        let e = parse("judge: ${CANARY_CONFIG_TEST_SECRET}\n").unwrap_err();
        assert!(
            e.starts_with("line 1, column 8: judge: unknown variant"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse(&format!(
            "prometheus:\n  url: http://p:9090\n  proxy_file: {}\n  max_concurrency: many\n",
            token.display()
        ))
        .unwrap_err();
        assert!(
            e.starts_with("line 4"),
            "line numbers survive the scrubbing: {e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
