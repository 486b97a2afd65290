#!/usr/bin/env python3
"""A recording fake of the helm CLI for tests: no cluster needed.

It keeps releases in state.json beside itself, records every call (argv and the helm-related
environment) in calls.jsonl, answers in helm's real JSON formats, checks its arguments the way
helm does, and fails on request (faults.json) with helm's real error messages.
It emulates helm 4 unless FAKE_HELM_VERSION (in version.txt) says v3.
"""
import fcntl
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STATE = os.path.join(HERE, "state.json")
CALLS = os.path.join(HERE, "calls.jsonl")
FAULTS = os.path.join(HERE, "faults.json")
VERSION_FILE = os.path.join(HERE, "version.txt")
NOW = "2026-11-27T12:00:00.000000000Z"


def load(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)


def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)


# Concurrent calls (several regions at once) take turns, as a cluster's release store would.
_lock = open(os.path.join(HERE, ".lock"), "w")
fcntl.flock(_lock, fcntl.LOCK_EX)

version = open(VERSION_FILE).read().strip() if os.path.exists(VERSION_FILE) else "v4.1.4"
v4 = version.startswith("v4")
argv = sys.argv[1:]

with open(CALLS, "a") as f:
    env = {k: v for k, v in os.environ.items() if k == "KUBECONFIG" or k.startswith("HELM_")}
    f.write(json.dumps({"argv": argv, "env": env}) + "\n")

# Flags: name -> takes a value. Global flags first.
GLOBAL = {"--namespace": True, "-n": True, "--kube-context": True, "--kubeconfig": True, "--debug": False}
WAIT = {"--wait": "wait", "--timeout": True}
COMMANDS = {
    "version": {"--template": True, "--short": False},
    "upgrade": {"--install": False, "-i": False, "-f": True, "--values": True, "--set": True, "--set-string": True,
                "--reuse-values": False, "--reset-values": False, **WAIT,
                **({"--rollback-on-failure": False} if v4 else {"--atomic": False})},
    "uninstall": {"--ignore-not-found": False, "--keep-history": False, **WAIT},
    "rollback": {**WAIT, "--cleanup-on-fail": False},
    "status": {"-o": True, "--output": True},
    "history": {"-o": True, "--output": True, "--max": True},
    "get": {"-o": True, "--output": True, "--all": False, "-a": False},
}

if not argv:
    fail("Error: fake helm needs a command")
command = argv[0]
if command not in COMMANDS:
    fail(f'Error: unknown command "{command}" for "helm" (the fake only knows {sorted(COMMANDS)}; use the real helm)')
known = {**GLOBAL, **COMMANDS[command]}

positional, flags = [], []
i = 1
while i < len(argv):
    a = argv[i]
    if a.startswith("-"):
        name, eq, inline = a.partition("=")
        if name not in known:
            fail(f"Error: unknown flag: {name}")
        kind = known[name]
        if kind == "wait":
            if v4:
                if eq and inline not in ("watcher", "hookOnly", "legacy"):
                    fail(f'Error: invalid argument "{inline}" for "--wait" flag: invalid wait strategy')
                flags.append((name, inline if eq else "watcher"))
            else:
                if eq and inline not in ("true", "false"):
                    fail(f'Error: invalid argument "{inline}" for "--wait" flag: strconv.ParseBool: parsing "{inline}": invalid syntax')
                flags.append((name, inline if eq else "true"))
        elif kind is True:
            if eq:
                flags.append((name, inline))
            else:
                i += 1
                if i >= len(argv):
                    fail(f"Error: flag needs an argument: {name}")
                flags.append((name, argv[i]))
        else:
            flags.append((name, "true"))
    else:
        positional.append(a)
    i += 1


def flag(name, *aliases):
    for n, v in flags:
        if n == name or n in aliases:
            return v
    return None


def all_flags(name):
    return [v for n, v in flags if n == name]


# Fault injection: the first matching fault applies.
faults = load(FAULTS, [])
for fault in faults:
    if fault.get("times", 1) <= 0:
        continue
    if fault["command"] != command:
        continue
    if "release" in fault and (not positional or fault["release"] not in positional):
        continue
    fault["times"] = fault.get("times", 1) - 1
    save(FAULTS, faults)
    time.sleep(fault.get("sleep", 0))
    if fault.get("stderr"):
        fail(fault["stderr"], fault.get("exit", 1))
    break

if command == "version":
    if flag("--template") == "{{.Version}}":
        sys.stdout.write(version)
    else:
        print(f'version.BuildInfo{{Version:"{version}", GitCommit:"fake", GitTreeState:"clean"}}')
    sys.exit(0)

namespace = flag("--namespace", "-n") or "default"
state = load(STATE, {})
releases = state.setdefault(namespace, {})


def set_path(values, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        values = values.setdefault(k, {})
    values[keys[-1]] = value


def typed(text):
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def new_revision(rel, config, description):
    for r in rel["revisions"]:
        if r["status"] == "deployed":
            r["status"] = "superseded"
    number = len(rel["revisions"]) + 1
    rel["revisions"].append({"revision": number, "updated": NOW, "status": "deployed",
                             "chart": "apex-inference-0.1.0", "app_version": "1.0.0",
                             "description": description, "config": config})
    return number


def current(rel):
    deployed = [r for r in rel["revisions"] if r["status"] == "deployed"]
    return deployed[-1] if deployed else rel["revisions"][-1]


if command == "upgrade":
    if len(positional) != 2:
        fail(f'Error: "helm upgrade" requires 2 arguments\n\nUsage:  helm upgrade [RELEASE] [CHART] [flags]')
    name, chart = positional
    install = flag("--install", "-i") is not None
    if not os.path.isdir(chart):
        fail(f'Error: {"INSTALLATION" if install and name not in releases else "UPGRADE"} FAILED: path "{chart}" not found')
    for values_file in all_flags("-f") + all_flags("--values"):
        if not os.path.isfile(values_file):
            fail(f"Error: open {values_file}: no such file or directory")
    for s in all_flags("--set"):
        if s.startswith("image.tag="):
            fail("fake helm: a version must be passed with --set-string, never --set")
    for s in all_flags("--set-string") + all_flags("--set"):
        if "," in s:
            fail(f"fake helm: {s!r} would set several values; versions must never contain ','")
    if name not in releases:
        if not install:
            fail(f'Error: UPGRADE FAILED: "{name}" has no deployed releases')
        releases[name] = {"revisions": []}
        config = {}
        description = "Install complete"
    else:
        config = json.loads(json.dumps(current(releases[name])["config"])) if flag("--reuse-values") else {}
        description = "Upgrade complete"
    for values_file in all_flags("-f") + all_flags("--values"):
        config.setdefault("_values_files", []).append(values_file)
    for s in all_flags("--set"):
        k, _, v = s.partition("=")
        set_path(config, k, typed(v))
    for s in all_flags("--set-string"):
        k, _, v = s.partition("=")
        set_path(config, k, v)
    n = new_revision(releases[name], config, description)
    save(STATE, state)
    print(f'Release "{name}" has been upgraded. Happy Helming!\nNAME: {name}\nNAMESPACE: {namespace}\nSTATUS: deployed\nREVISION: {n}')
    sys.exit(0)

if command == "uninstall":
    name = positional[0]
    if name not in releases:
        if flag("--ignore-not-found"):
            sys.exit(0)
        fail(f"Error: uninstall: Release not loaded: {name}: release: not found")
    del releases[name]
    save(STATE, state)
    print(f'release "{name}" uninstalled')
    sys.exit(0)

if command == "rollback":
    name = positional[0]
    if name not in releases:
        fail("Error: release: not found")
    rel = releases[name]
    target = int(positional[1]) if len(positional) > 1 else len(rel["revisions"]) - 1
    matches = [r for r in rel["revisions"] if r["revision"] == target]
    if not matches:
        fail(f"Error: release has no {target} version")
    new_revision(rel, matches[0]["config"], f"Rollback to {target}")
    save(STATE, state)
    print("Rollback was a success! Happy Helming!")
    sys.exit(0)

output = flag("-o", "--output")
if output != "json":
    fail("fake helm: only -o json is emulated")

if command == "status":
    name = positional[0]
    if name not in releases:
        fail("Error: release: not found")
    rev = current(releases[name])
    print(json.dumps({"name": name, "info": {"first_deployed": NOW, "last_deployed": NOW, "deleted": "",
                      "description": rev["description"], "status": rev["status"], "notes": ""},
                      "config": rev["config"], "manifest": "", "version": rev["revision"], "namespace": namespace}))
    sys.exit(0)

if command == "history":
    name = positional[0]
    if name not in releases:
        fail("Error: release: not found")
    print(json.dumps([{k: r[k] for k in ("revision", "updated", "status", "chart", "app_version", "description")}
                      for r in releases[name]["revisions"]]))
    sys.exit(0)

if command == "get":
    if positional[:1] != ["values"] or len(positional) != 2:
        fail("fake helm: only 'get values RELEASE' is emulated")
    name = positional[1]
    if name not in releases:
        fail("Error: release: not found")
    config = {k: v for k, v in current(releases[name])["config"].items() if not k.startswith("_")}
    print(json.dumps(config if config else None))
    sys.exit(0)
