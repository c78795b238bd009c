#!/usr/bin/env bash
# Browser tests of the widget: builds it, serves the Bad Boll fixture site with the widget's
# script tag in every page (as a CMS template would), crawls it into a fresh index, starts
# `lotse serve` with the real models, and drives Debian's chromium with playwright-core
# (widget.test.mjs). Screenshots and axe reports go to test-artifacts/browser/.
#
# Needs /usr/bin/chromium (apt-get install chromium) and Node.js with npm. Without chromium it
# prints "skipped" and succeeds, unless LOTSE_REQUIRE_BROWSER=1 (CI) makes that a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] || ! command -v node >/dev/null 2>&1; then
  if [ "${LOTSE_REQUIRE_BROWSER:-0}" = 1 ]; then
    echo "error: browser tests need $chromium and node (apt-get install chromium nodejs npm)" >&2
    exit 1
  fi
  echo "browser tests skipped: no $chromium or no node" >&2
  exit 0
fi

bash scripts/build-widget.sh
cargo build --locked -p lotse -p lotse-testsite
bin=${CARGO_TARGET_DIR:-target}/debug
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

artifacts=${LOTSE_ARTIFACTS:-$root/test-artifacts/browser}
rm -rf "$artifacts" && mkdir -p "$artifacts"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
site_port=$(free_port)
api_port=$(free_port)
site="http://127.0.0.1:$site_port"
api="http://127.0.0.1:$api_port"
fixture=../shared/fixtures/sites/bad-boll

"$bin/lotse-testsite" "$fixture" --port "$site_port" --log "$artifacts/site-requests.log" \
  --body-end "<script src=\"$api/widget/lotse.js\" data-lotse-api=\"$api\" data-lotse-town=\"Gemeinde Bad Boll\" defer></script>" \
  > "$work/site.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q serving "$work/site.out" 2>/dev/null && break; sleep 0.1; done

cat > "$work/lotse.toml" <<TOML
data = "$work/data"
[site]
url = "$site/"
town = "Gemeinde Bad Boll"
[contact]
name = "das Bürgerbüro im Rathaus"
phone = "07164 808-0"
email = "info@bad-boll.de"
[server]
addr = "127.0.0.1:$api_port"
cors_origins = ["$site"]
[simplify]
enabled = true
pregenerate = false
[widget]
dir = "$root/widget/dist"
TOML

echo "crawling $site into a fresh index (with embeddings)" >&2
"$bin/lotse" crawl "$site/" --data "$work/data" --delay-ms 0 --concurrency 4 > "$artifacts/crawl.log" 2>&1
# a staff account for the portal test (an editor of one group, before the KI-Kompass check)
portal_password="portal-test-$(date +%s)-passwort"
LOTSE_ADMIN_PASSWORD="$portal_password" "$bin/lotse" admin create-user --name m.muster \
  --display-name "Maria Muster" --role editor --groups bauamt --data "$work/data" >/dev/null
# and an admin for the administration section
LOTSE_ADMIN_PASSWORD="$portal_password" "$bin/lotse" admin create-user --name it.admin \
  --display-name "IT Verwaltung" --role admin --data "$work/data" >/dev/null
# an editor of the web team for the insights test ("Fragen ohne Antwort")
LOTSE_ADMIN_PASSWORD="$portal_password" "$bin/lotse" admin create-user --name w.web \
  --display-name "Web Team" --role editor --groups presse --data "$work/data" >/dev/null
echo "starting lotse serve on $api" >&2
"$bin/lotse" serve --config "$work/lotse.toml" > "$artifacts/serve.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 600); do
  if curl -fsS "$api/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  echo "error: lotse serve did not get ready; its log:" >&2
  tail -30 "$artifacts/serve.log" >&2
  exit 1
fi

export LOTSE_SITE="$site" LOTSE_API="$api" LOTSE_ARTIFACTS="$artifacts" CHROMIUM="$chromium"
# a development question about a page that exists as HTML, and a short by-law page
export LOTSE_QUESTION="Wie kann ein Sportler oder Verein in Bad Boll geehrt werden?"
export LOTSE_EXPECTED="/ortsrecht/bbo-richtlinie-ehrungen/,/ortsrecht/bbo-richtlinie-ehrungen.pdf"
export LOTSE_BYLAW="/ortsrecht/bbo-satzung-weitere-verkaufssonntage/"
status=0
node tests/browser/widget.test.mjs || status=$?
LOTSE_PORTAL_USER=m.muster LOTSE_PORTAL_ADMIN=it.admin LOTSE_PORTAL_PASSWORD="$portal_password" node tests/browser/portal.test.mjs || status=$((status + $?))
LOTSE_INSIGHTS_USER=w.web LOTSE_PORTAL_PASSWORD="$portal_password" node tests/browser/insights.test.mjs || status=$((status + $?))
exit "$status"
