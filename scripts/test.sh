#!/usr/bin/env bash
# Runs every test: the workspace's unit and integration tests (a real tantivy index, crawls of
# the fixture sites over 127.0.0.1, the CLI contract, the real models), then the widget's
# browser tests in headless chromium (tests/browser/run.sh; screenshots and axe reports in
# test-artifacts/browser/). LOTSE_SKIP_BROWSER=1 leaves the browser tests out.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
if [ "${LOTSE_SKIP_BROWSER:-0}" != 1 ]; then
  bash tests/browser/run.sh
fi
