//! The book's generated reference pages: the command line from clap, the configuration from its
//! JSON Schema. One source of truth each; the tests fail when a committed page is stale.

use clap::CommandFactory;
use serde_json::{Map, Value};

use crate::args::Cli;

const GENERATED: &str = "<!-- Generated from the code; do not edit. `CANARY_UPDATE_DOCS=1 cargo test -p canary-cli --test docs` rewrites it. -->";

/// The command-line reference: every command's `--help`, as clap renders it.
pub fn cli() -> String {
    let mut out = format!(
        "# Command line\n\n{GENERATED}\n\nEvery command's help, as `canary … --help` prints it. \
         [The `canary` command](../cli.md) explains how the commands fit together.\n"
    );
    for (path, mut command) in commands(Cli::command().term_width(100)) {
        let help = command.render_long_help().to_string();
        out.push_str(&format!(
            "\n## `{}`\n\n```text\n{}\n```\n",
            path.join(" "),
            help.trim_end()
        ));
    }
    out
}

/// Every visible command of `root` with the names on its way (`["canary", "config",
/// "check"]`), `help` left out: the walk this page and the man pages share.
pub(crate) fn commands(mut root: clap::Command) -> Vec<(Vec<String>, clap::Command)> {
    fn walk(
        command: &clap::Command,
        path: Vec<String>,
        out: &mut Vec<(Vec<String>, clap::Command)>,
    ) {
        if command.is_hide_set() {
            return;
        }
        out.push((path.clone(), command.clone()));
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" {
                let mut next = path.clone();
                next.push(sub.get_name().to_owned());
                walk(sub, next, out);
            }
        }
    }
    root.build();
    let mut out = Vec::new();
    walk(&root, vec!["canary".to_owned()], &mut out);
    out
}

/// The configuration reference: every key of `canary.yaml`, its type, default and meaning,
/// from the schema `canary config schema` prints.
pub fn config() -> String {
    let schema = crate::config::schema();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = format!(
        "# Configuration\n\n{GENERATED}\n\nEvery key of the file `canary --config` reads, from its \
         JSON Schema (`canary config schema`). Unknown keys are errors; `canary config check FILE` \
         checks a file. Durations are seconds, or `90s`, `5m`, `1h30m`, `2d`. `${{NAME}}` in a \
         value reads an environment variable.\n"
    );
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    out.push_str("\n| key | type | what it is |\n|---|---|---|\n");
    for (key, prop) in props {
        out.push_str(&format!(
            "| [`{key}`](#{}) | {} | {} |\n",
            slug(key),
            type_of(prop, &defs),
            first_sentence(&description(prop, &defs))
        ));
    }
    for (key, prop) in props {
        section(key, prop, &defs, &mut out, 0);
    }
    out
}

fn section(path: &str, prop: &Value, defs: &Map<String, Value>, out: &mut String, depth: usize) {
    let target = resolve(prop, defs);
    let level = "#".repeat(depth + 2);
    out.push_str(&format!("\n{level} `{path}`\n\n"));
    let text = description(prop, defs);
    if !text.is_empty() {
        out.push_str(&format!("{}\n\n", one_line(&text)));
    }
    let fields = target.get("properties").and_then(Value::as_object);
    let items = target.get("items").map(|i| resolve(i, defs));
    let fields = fields.or_else(|| {
        items
            .as_ref()
            .and_then(|i| i.get("properties"))
            .and_then(Value::as_object)
    });
    match fields {
        Some(fields) if !fields.is_empty() => {
            out.push_str("| key | type | default | what it is |\n|---|---|---|---|\n");
            let mut nested = Vec::new();
            for (key, field) in fields {
                let object = resolve(field, defs).get("properties").is_some();
                let name = if object && depth < 2 {
                    nested.push((key, field));
                    format!("[`{key}`](#{})", slug(&format!("{path}.{key}")))
                } else {
                    format!("`{key}`")
                };
                out.push_str(&format!(
                    "| {name} | {} | {} | {} |\n",
                    type_of(field, defs),
                    default_of(field, &target, key),
                    one_line(&description(field, defs)).replace('|', "\\|")
                ));
            }
            for (key, field) in nested {
                section(&format!("{path}.{key}"), field, defs, out, depth + 1);
            }
        }
        _ => {
            out.push_str(&format!("Type: {}.", type_of(prop, defs)));
            if let Some(d) = prop.get("default") {
                out.push_str(&format!(" Default: `{}`.", compact(d)));
            }
            out.push('\n');
            let variants = variants(&target, defs);
            if !variants.is_empty() {
                out.push_str("\n| value | what it is |\n|---|---|\n");
                for (v, d) in variants {
                    out.push_str(&format!("| `{v}` | {} |\n", one_line(&d)));
                }
            }
        }
    }
}

/// mdBook's anchor for a heading that is `text` in backquotes.
fn slug(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The schema a `$ref` points at, or the schema itself.
fn resolve(prop: &Value, defs: &Map<String, Value>) -> Value {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return defs.get(name).cloned().unwrap_or(Value::Null);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = prop.get(key).and_then(Value::as_array) {
            if let Some(inner) = list
                .iter()
                .find(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            {
                if inner.get("$ref").is_some() && list.len() <= 2 {
                    return resolve(inner, defs);
                }
            }
        }
    }
    prop.clone()
}

fn description(prop: &Value, defs: &Map<String, Value>) -> String {
    prop.get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            resolve(prop, defs)
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn type_of(prop: &Value, defs: &Map<String, Value>) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        let target = defs.get(name).cloned().unwrap_or(Value::Null);
        return match name {
            "Duration" => "duration".into(),
            "Secret" => "secret (string)".into(),
            _ if target.get("properties").is_some() => "object".into(),
            _ => type_of(&target, defs),
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(list) = prop.get(key).and_then(Value::as_array) {
            let mut kinds: Vec<String> = Vec::new();
            let mut consts: Vec<String> = Vec::new();
            for v in list {
                if let Some(c) = v.get("const") {
                    consts.push(format!("`{}`", compact(c)));
                } else if let Some(e) = v.get("enum").and_then(Value::as_array) {
                    consts.extend(e.iter().map(|c| format!("`{}`", compact(c))));
                } else if v.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                } else {
                    kinds.push(type_of(v, defs));
                }
            }
            kinds.extend(consts);
            kinds.dedup();
            return kinds.join(" or ");
        }
    }
    if let Some(e) = prop.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|c| format!("`{}`", compact(c)))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    match prop.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "array" => match prop.get("items") {
                Some(items) => format!("list of {}", type_of(items, defs)),
                None => "list".into(),
            },
            "object" if prop.get("additionalProperties").is_some() => "map".into(),
            other => other.to_owned(),
        },
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

fn variants(target: &Value, defs: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = target.get(key).and_then(Value::as_array) {
            for v in list {
                let d = description(v, defs);
                if let Some(c) = v.get("const") {
                    out.push((compact(c), d));
                } else if let Some(e) = v.get("enum").and_then(Value::as_array) {
                    for c in e {
                        out.push((compact(c), d.clone()));
                    }
                }
            }
        }
    }
    out
}

fn default_of(field: &Value, parent: &Value, key: &str) -> String {
    let d = field.get("default").or_else(|| {
        parent
            .get("default")
            .and_then(|d| d.get(key))
            .filter(|v| !v.is_null())
    });
    match d {
        Some(v) => {
            let text = compact(v);
            if text.len() > 60 {
                "see `canary config example`".into()
            } else {
                format!("`{}`", text.replace('|', "\\|"))
            }
        }
        None => {
            let required = parent
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|k| k == key));
            if required {
                "required".into()
            } else {
                "—".into()
            }
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` on one line, its rustdoc links (`[`x`](crate::X)`) as plain text.
fn one_line(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = &after[..end];
        if target.contains("::") || !target.contains(['/', '.', '#']) {
            // An intra-doc link: keep the text, drop its `[` and the target.
            let head = &rest[..i];
            match head.rfind('[') {
                Some(open) => {
                    plain.push_str(&head[..open]);
                    plain.push_str(&head[open + 1..]);
                }
                None => plain.push_str(head),
            }
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            plain.push_str(&rest[..i + 2]);
            rest = after;
        }
    }
    plain.push_str(rest);
    // A link without a target (`[`Plausible`]`, rustdoc's shorthand): its text alone.
    let plain = plain.replace("[`", "`").replace("`]", "`");
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_sentence(text: &str) -> String {
    let line = one_line(text);
    let mut from = 0;
    while let Some(i) = line[from..].find(". ").map(|i| i + from) {
        // "e.g. " and "i.e. " do not end a sentence.
        if line[..i].ends_with("e.g") || line[..i].ends_with("i.e") {
            from = i + 2;
            continue;
        }
        return line[..=i].to_owned();
    }
    line
}

/// The HTTP reference: every route of `canary serve`, from its OpenAPI document.
pub fn http() -> String {
    let doc = canary_serve::openapi::document();
    let mut out = format!(
        "# HTTP API\n\n{GENERATED}\n\n`canary serve` answers these routes. The contract is the \
         OpenAPI 3.1 document [`openapi.json`](openapi.json), which the service also serves at \
         `GET /openapi.json`; the tests fuzz the running service against it with schemathesis. \
         Any other path is `404` and another method on one of these paths `405`. \
         [`canary serve`](../serve.md) explains how controllers use them.\n"
    );
    // In the order the service lists them, not the document's alphabetical one.
    for operation in canary_serve::openapi::OPERATIONS {
        let (path, method) = (operation.path, operation.method);
        let op = &doc["paths"][path][method];
        {
            out.push_str(&format!(
                "\n## `{} {path}`\n\n**{}.** {}\n",
                method.to_uppercase(),
                op["summary"].as_str().unwrap_or_default(),
                op["description"].as_str().unwrap_or_default()
            ));
            if op.get("security").is_some() {
                out.push_str(
                    "\nWith `serve.auth_token` set, it needs `Authorization: Bearer <token>`.\n",
                );
            }
            if let Some(params) = op["parameters"].as_array() {
                out.push_str(
                    "\n**Parameters**\n\n| query parameter | required | what it is |\n|---|---|---|\n",
                );
                for p in params {
                    out.push_str(&format!(
                        "| `{}` | {} | {} |\n",
                        p["name"].as_str().unwrap_or_default(),
                        if p["required"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        },
                        one_line(p["description"].as_str().unwrap_or_default())
                    ));
                }
            }
            if let Some(body) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                out.push_str(&format!(
                    "\nThe body is JSON: `{}` in [`openapi.json`](openapi.json).\n",
                    body.rsplit('/').next().unwrap_or(body)
                ));
            }
            out.push_str("\n**Answers**\n\n| status | when | body |\n|---|---|---|\n");
            if let Some(responses) = op["responses"].as_object() {
                for (code, r) in responses {
                    let (media, schema) = r["content"]
                        .as_object()
                        .and_then(|c| c.iter().next())
                        .map(|(m, v)| (m.as_str(), v["schema"]["$ref"].as_str()))
                        .unwrap_or(("", None));
                    let body = match schema {
                        Some(s) => format!("`{}` (JSON)", s.rsplit('/').next().unwrap_or(s)),
                        None => format!("`{}`", media.split(';').next().unwrap_or(media)),
                    };
                    out.push_str(&format!(
                        "| {code} | {} | {body} |\n",
                        one_line(r["description"].as_str().unwrap_or_default()).replace('|', "\\|")
                    ));
                }
            }
        }
    }
    out
}

/// The OpenAPI document of `canary serve`, as committed beside the HTTP reference.
pub fn openapi() -> String {
    let text = serde_json::to_string_pretty(&canary_serve::openapi::document())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    format!("{text}\n")
}
