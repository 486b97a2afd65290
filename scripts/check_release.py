#!/usr/bin/env python3
"""What a release needs, checked before one is cut (run by ./scripts/test.sh).

Usage: check_release.py crates   after `cargo package`: every published crate's metadata is
                                 complete, its .crate holds README.md and LICENSE, and the
                                 release workflow publishes them all in dependency order.
       check_release.py wheel W  the wheel W is abi3 and its metadata complete.
       check_release.py urls     one repository URL everywhere, and the image named after it.
Exits 1 with one line per problem.
"""

import email.parser
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
problems: list[str] = []


def problem(text: str) -> None:
    problems.append(text)


def workspace() -> dict:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]


def published() -> list[dict]:
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    packages = json.loads(out)["packages"]
    # `publish = false` is an empty list in cargo's metadata.
    return [p for p in packages if p["publish"] != []]


def check_crates() -> None:
    crates = published()
    names = {p["name"] for p in crates}
    for p in crates:
        for field in ("description", "license", "repository", "homepage", "documentation", "readme"):
            if not p.get(field):
                problem(f"{p['name']}: no `{field}` in Cargo.toml")
        if not p.get("keywords") or not p.get("categories"):
            problem(f"{p['name']}: no keywords or categories")
        if p.get("documentation") != f"https://docs.rs/{p['name']}":
            problem(f"{p['name']}: documentation is {p.get('documentation')}, not its docs.rs page")
        for d in p["dependencies"]:
            if d.get("path") and d["kind"] in (None, "build") and d["req"] == "*":
                problem(f"{p['name']}: dependency {d['name']} has a path and no version")
        crate = ROOT / "target" / "package" / f"{p['name']}-{p['version']}.crate"
        if not crate.exists():
            problem(f"{p['name']}: {crate.name} was not packaged")
            continue
        with tarfile.open(crate) as t:
            files = {Path(m.name).relative_to(f"{p['name']}-{p['version']}").as_posix() for m in t.getmembers()}
            for needed in ("README.md", "LICENSE", "Cargo.toml"):
                if needed not in files:
                    problem(f"{crate.name}: no {needed}")
            if "LICENSE" in files:
                text = t.extractfile(f"{p['name']}-{p['version']}/LICENSE").read().decode()
                if "Apache License" not in text or "Version 2.0" not in text:
                    problem(f"{crate.name}: LICENSE is not the Apache License 2.0")
    # The release publishes every crate once, each after the workspace crates it depends on.
    workflow = (ROOT / ".github/workflows/release.yml").read_text()
    m = re.search(r"for crate in ([^;]+); do\s+cargo publish", workflow)
    if not m:
        problem("release.yml: no `for crate in ...; do cargo publish` loop")
        return
    order = m.group(1).split()
    if sorted(order) != sorted(names):
        problem(f"release.yml publishes {sorted(order)}, the workspace publishes {sorted(names)}")
    position = {n: i for i, n in enumerate(order)}
    for p in crates:
        for d in p["dependencies"]:
            if d["name"] in names and d["kind"] in (None, "build") and d["name"] in position:
                if position.get(p["name"], -1) < position[d["name"]]:
                    problem(f"release.yml publishes {p['name']} before its dependency {d['name']}")


def check_wheel(path: str) -> None:
    wheel = Path(path)
    # name-version-python-abi-platform.whl
    tags = wheel.stem.split("-")
    if len(tags) != 5 or tags[3] != "abi3" or not tags[2].startswith("cp310"):
        problem(f"{wheel.name}: not an abi3 wheel for CPython 3.10 and later")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        if meta_name is None:
            problem(f"{wheel.name}: no METADATA")
            return
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
        for field in ("Name", "Version", "Summary", "Requires-Python", "License-Expression", "Author"):
            if not meta.get(field):
                problem(f"{wheel.name}: no {field} in METADATA")
        if meta.get("License-Expression") not in (None, "Apache-2.0"):
            problem(f"{wheel.name}: license {meta.get('License-Expression')}")
        urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
        for label in ("Repository", "Documentation", "Changelog"):
            if label not in urls:
                problem(f"{wheel.name}: no Project-URL {label}")
        if urls.get("Repository") != workspace()["repository"]:
            problem(f"{wheel.name}: Repository is {urls.get('Repository')}")
        if meta.get("Version") != workspace()["version"]:
            problem(f"{wheel.name}: version {meta.get('Version')}, the workspace's is {workspace()['version']}")
        if not (meta.get("Description-Content-Type") or "").startswith("text/markdown") or len(meta.get_payload()) < 200:
            problem(f"{wheel.name}: no README as its description")
        if not any(n.endswith("licenses/LICENSE") for n in names):
            problem(f"{wheel.name}: no LICENSE in its dist-info")
        for needed in ("canary/__init__.py", "canary/py.typed", "canary/_canary.pyi"):
            if needed not in names:
                problem(f"{wheel.name}: no {needed}")
        if not any(re.fullmatch(r"canary/_canary\.abi3\.so", n) for n in names):
            problem(f"{wheel.name}: no abi3 extension module")


def check_urls() -> None:
    repo = workspace()["repository"]
    m = re.fullmatch(r"https://github\.com/([a-z0-9-]+)/([a-z0-9-]+)", repo)
    if not m:
        problem(f"Cargo.toml: repository {repo} is not a GitHub repository")
        return
    image = f"ghcr.io/{m.group(1)}/{m.group(2)}"
    # The chart is pushed as an OCI artifact beside the image, under the owner's `charts`.
    charts = f"ghcr.io/{m.group(1)}/charts"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    github = re.compile(r"https://github\.com/(?!rust-lang/|rhysd/|kjanat/)([A-Za-z0-9-]+/[A-Za-z0-9._-]+)")
    for name in tracked:
        path = ROOT / name
        if path.is_symlink() or path.suffix in (".png", ".svg", ".csv", ".lock", ".so") or not path.is_file():
            continue
        if name == "scripts/check_release.py":
            continue
        text = path.read_text(errors="replace")
        if "example.invalid" in text:
            problem(f"{name}: a placeholder URL (example.invalid)")
        for other in github.findall(text):
            if not (f"https://github.com/{other}").startswith(repo) and other.split("/")[0] == m.group(1):
                problem(f"{name}: {other} is not the project's repository {repo}")
        # examples/chart is the guide's own service, with its own image.
        for found in re.findall(r"ghcr\.io/[a-z0-9-]+/[a-z0-9-]+", text):
            if found not in (image, charts) and not name.startswith("examples/chart/"):
                problem(f"{name}: image {found}, the project's is {image} (charts: {charts})")
    values = (ROOT / "deploy/helm/canary-judge/values.yaml").read_text()
    if f"repository: {image}" not in values:
        problem(f"deploy/helm/canary-judge/values.yaml: image.repository is not {image}")
    release = (ROOT / ".github/workflows/release.yml").read_text()
    if f"images: {image}" not in release:
        problem(f"release.yml: the image pushed is not {image}")
    if f"oci://{charts}" not in release:
        problem(f"release.yml: the chart is not pushed to oci://{charts}")
    if f'org.opencontainers.image.source="{repo}"' not in (ROOT / "Dockerfile").read_text():
        problem(f"Dockerfile: the image's source label is not {repo}")
    chart = (ROOT / "deploy/helm/canary-judge/Chart.yaml").read_text()
    if f"home: {repo}" not in chart:
        problem(f"Chart.yaml: home is not {repo}")
    pyproject = tomllib.loads((ROOT / "canary-py/pyproject.toml").read_text())["project"]
    if pyproject["urls"].get("Repository") != repo:
        problem("canary-py/pyproject.toml: Repository is not the workspace's")
    if pyproject["version"] != workspace()["version"]:
        problem("canary-py/pyproject.toml: version is not the workspace's")
    version = workspace()["version"]
    if f"## [{version}]" not in (ROOT / "CHANGELOG.md").read_text():
        problem(f"CHANGELOG.md: no section for {version} (the release notes come from it)")
    if f'appVersion: "{version}"' not in chart:
        problem(f"Chart.yaml: appVersion is not {version}")


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "crates":
        check_crates()
    elif what == "wheel" and len(sys.argv) == 3:
        check_wheel(sys.argv[2])
    elif what == "urls":
        check_urls()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"release check: {p}", file=sys.stderr)
    if not problems:
        print(f"release check ({what}): ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
