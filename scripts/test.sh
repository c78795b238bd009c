#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the real tantivy index, crawls of the fixture
# sites over 127.0.0.1, and the CLI contract.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
