#!/usr/bin/env bash
# Set up and run: build lotse, then `lotse up`: fetch the default models if missing, crawl the
# site into ./data (with chunk embeddings), and serve the chat API on 127.0.0.1:8080 until
# Ctrl-C.
#   scripts/run.sh https://www.example-gemeinde.de/   a real town website
#   scripts/run.sh                                     no network? the bad-boll test site, served
#                                                      on 127.0.0.1 from ../shared/fixtures
# Settings: lotse.toml (see lotse.example.toml), LOTSE__SECTION__KEY variables, or flags
# after the URL (e.g. --addr 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p lotse -p lotse-testsite
bin=target/release
data=${LOTSE_DATA:-data}
site=${1:-}
shift || true
if [ -z "$site" ]; then
  fixture=../shared/fixtures/sites/bad-boll
  port=${LOTSE_DEMO_PORT:-8089}
  "$bin/lotse-testsite" "$fixture" --port "$port" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 1
  site="http://127.0.0.1:$port/"
fi
echo "When it says ready, ask:  curl -s localhost:8080/api/v1/chat -H 'content-type: application/json' -d '{\"question\": \"Wie hoch ist die Hundesteuer?\"}'" >&2
"$bin/lotse" up "$site" --data "$data" "$@"
