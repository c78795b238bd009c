#!/usr/bin/env bash
# Runs every test: the workspace's unit and integration tests (a real tantivy index, crawls of
# the fixture sites over 127.0.0.1, the CLI contract, the real models), then the widget's
# browser tests in headless chromium (tests/browser/run.sh; screenshots and axe reports in
# test-artifacts/browser/), then the portal's tests once more against PostgreSQL
# (scripts/test-postgres.sh: a throw-away cluster on 127.0.0.1; skipped without PostgreSQL).
# Last, the licence inventory (scripts/check-licences.sh: cargo deny, the SBOM and the
# third-party notices) and the deployment files (scripts/check-deploy.sh: systemd units,
# compose file, proxy examples, the container image built and asked for /ready).
# LOTSE_SKIP_BROWSER=1 leaves the browser tests out, LOTSE_SKIP_POSTGRES=1 the PostgreSQL run,
# LOTSE_SKIP_DEPLOY=1 the deployment checks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
if [ "${LOTSE_SKIP_BROWSER:-0}" != 1 ]; then
  bash tests/browser/run.sh
fi
if [ "${LOTSE_SKIP_POSTGRES:-0}" != 1 ]; then
  bash scripts/test-postgres.sh
fi
bash scripts/check-licences.sh
if [ "${LOTSE_SKIP_DEPLOY:-0}" != 1 ]; then
  bash scripts/check-deploy.sh
fi
