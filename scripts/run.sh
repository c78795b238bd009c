#!/usr/bin/env bash
# Set up and run: build lotse and the widget, then `lotse up`: fetch the default models if missing, crawl the
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
# the citizens' widget (leptos -> WebAssembly), served by lotse at /widget/lotse.js
bash scripts/build-widget.sh
bin=target/release
data=${LOTSE_DATA:-data}
site=${1:-}
shift || true
if [ -z "$site" ]; then
  fixture=../shared/fixtures/sites/bad-boll
  port=${LOTSE_DEMO_PORT:-8089}
  # the test site's pages carry the widget's script tag, as a town's CMS template would
  "$bin/lotse-testsite" "$fixture" --port "$port" \
    --body-end '<script src="http://127.0.0.1:8080/widget/lotse.js" data-lotse-town="Gemeinde Bad Boll" defer></script>' &
  export LOTSE__SERVER__CORS_ORIGINS="${LOTSE__SERVER__CORS_ORIGINS:-[\"http://127.0.0.1:$port\"]}"
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 1
  site="http://127.0.0.1:$port/"
fi
[ -n "${port:-}" ] && echo "The test site with the chat widget and the Einfache-Sprache button: http://127.0.0.1:$port/" >&2
echo "When it says ready, ask:  curl -s localhost:8080/api/v1/chat -H 'content-type: application/json' -d '{\"question\": \"Wie hoch ist die Hundesteuer?\"}'" >&2
"$bin/lotse" up "$site" --data "$data" "$@"
