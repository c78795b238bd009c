#!/usr/bin/env bash
# The licence inventory, checked: `cargo deny` over the server's and the widget's dependency
# trees (deny.toml: licences, sources, wildcard versions; advisories only where the RustSec
# database was fetched before: it is a git repository, which the machines here cannot reach,
# unlike crates.io), then the SBOM (CycloneDX) and the
# third-party notices are generated and read back.
# Without cargo-deny: a failure with LOTSE_REQUIRE_DENY=1 (CI installs it), else skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

if command -v cargo-deny >/dev/null 2>&1; then
  checks=(licenses bans sources)
  if [ -d "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" ] || [ -d "${CARGO_HOME:-$HOME/.cargo}/advisory-db" ]; then
    checks+=(advisories)
  else
    echo "note: no RustSec advisory database on this machine; advisories not checked" >&2
  fi
  for manifest in Cargo.toml widget/Cargo.toml; do
    # `--offline` needs every crate of the lock file on disk, also those of other platforms
    # (Windows, macOS) that no build here downloads: fetch them from the registry first
    cargo fetch --locked --manifest-path "$manifest" >/dev/null
    # deny.toml is found from the manifest's directory upwards
    cargo deny --offline --log-level error --manifest-path "$manifest" check "${checks[@]}"
    echo "ok licences: cargo deny ${checks[*]} ($manifest)"
  done
elif [ "${LOTSE_REQUIRE_DENY:-0}" = 1 ]; then
  echo "FAIL licences: cargo-deny not installed (cargo install --locked cargo-deny)" >&2
  exit 1
else
  echo "skip licences: cargo-deny not installed (cargo install --locked cargo-deny)" >&2
fi

python3 scripts/licences.py sbom -o "$target/lotse.cdx.json"
python3 scripts/licences.py notices -o "$target/THIRD-PARTY-NOTICES.md"
# read back: every third-party component has a version, a package URL, a licence and the
# checksum from Cargo.lock; the weak-copyleft crates are named in the notices
python3 - "$target/lotse.cdx.json" "$target/THIRD-PARTY-NOTICES.md" <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
third = [c for c in bom["components"] if "purl" in c]
assert len(third) > 300, f"only {len(third)} crates: is the dependency walk broken?"
bad = [c["name"] for c in third if not (c.get("licenses") and c.get("hashes") and c.get("version"))]
assert not bad, f"components without licence, hash or version: {bad}"
refs = {c["bom-ref"] for c in bom["components"]} | {bom["metadata"]["component"]["bom-ref"]}
assert all(d["ref"] in refs and set(d["dependsOn"]) <= refs for d in bom["dependencies"])
names = {c["name"] for c in third}
for must in ("tantivy", "candle-core", "axum", "sqlx", "leptos"):
    assert must in names, f"{must} missing from the SBOM"
notices = open(sys.argv[2]).read()
assert "## MPL-2.0" in notices and "cssparser" in notices, "MPL-2.0 crates not attributed"
print(f"ok licences: SBOM with {len(third)} crates and notices read back")
PY
