#!/usr/bin/env bash
# Checks the deployment files in deploy/ with the tools that read them, then builds the
# container image and asks its /ready (scripts/build-image.sh):
# - the systemd units and timer: `systemd-analyze verify` (any warning fails);
# - the compose file: `docker-compose config` (the Compose file format, variables filled);
# - the reverse-proxy examples: `nginx -t` and `caddy validate`.
# Tools that are missing are a failure with LOTSE_REQUIRE_DEPLOY=1 (CI), else skipped.
# LOTSE_IMAGE_BIN picks the binary for the image (default: the debug build the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() { echo "ok deploy: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL deploy: $1" >&2; failed=$((failed + 1)); }
missing() {
  if [ "${LOTSE_REQUIRE_DEPLOY:-0}" = 1 ]; then
    fail "$1 not installed"
  else
    echo "skip deploy: $1 not installed" >&2
  fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=${LOTSE_IMAGE_BIN:-${CARGO_TARGET_DIR:-target}/debug/lotse}
[ -x "$bin" ] || cargo build --locked -p lotse

# systemd: verify the units as installed, with the binary where ExecStart names it
if command -v systemd-analyze >/dev/null; then
  for f in deploy/systemd/*.service deploy/systemd/*.timer; do
    sed "s#/usr/local/bin/lotse#$(realpath "$bin")#" "$f" > "$tmp/$(basename "$f")"
  done
  if out=$(cd "$tmp" && systemd-analyze verify ./*.service ./*.timer 2>&1) && [ -z "$out" ]; then
    ok "systemd units verified"
  else
    fail "systemd-analyze verify: $out"
  fi
  # the check itself: a misspelt key is only a warning to systemd, and must fail here
  mkdir "$tmp/broken"
  sed 's/^Restart=on-failure/Restart=on-failur\nRestartSecs=5/' "$tmp/lotse.service" > "$tmp/broken/lotse.service"
  if [ -z "$(cd "$tmp/broken" && systemd-analyze verify ./lotse.service 2>&1)" ]; then
    fail "systemd-analyze verify did not notice a broken unit"
  fi
else
  missing systemd-analyze
fi

# compose
if command -v docker-compose >/dev/null; then
  if out=$(POSTGRES_PASSWORD=x LOTSE_SITE_URL=https://www.stadt.example/ docker-compose -f deploy/compose.yaml config -q 2>&1) && [ -z "$out" ]; then
    ok "compose file valid"
  else
    fail "docker-compose config: $out"
  fi
  # without the secrets it refuses to start instead of running with an empty password
  if docker-compose -f deploy/compose.yaml config -q >/dev/null 2>&1; then
    fail "the compose file starts without POSTGRES_PASSWORD"
  fi
else
  missing docker-compose
fi

# nginx: the example inside a minimal main configuration, with throw-away certificates
if command -v nginx >/dev/null && command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=lotse-check -days 1 \
    -keyout "$tmp/k.key" -out "$tmp/c.crt" 2>/dev/null
  sed "s#/etc/ssl/lotse/[a-z]*\.crt#$tmp/c.crt#; s#/etc/ssl/lotse/[a-z]*\.key#$tmp/k.key#" \
    deploy/proxy/nginx-lotse.conf > "$tmp/lotse.conf"
  printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include %s/lotse.conf;\n}\n' "$tmp" "$tmp" > "$tmp/nginx.conf"
  if out=$(nginx -t -q -c "$tmp/nginx.conf" -e stderr 2>&1); then
    ok "nginx example valid"
  else
    fail "nginx -t: $out"
  fi
else
  missing nginx
fi

# caddy
if command -v caddy >/dev/null; then
  if out=$(caddy validate --config deploy/proxy/Caddyfile --adapter caddyfile 2>&1); then
    ok "Caddyfile valid"
  else
    fail "caddy validate: $out"
  fi
else
  missing caddy
fi

# the image, built and asked for /ready
if command -v podman >/dev/null || command -v docker >/dev/null; then
  if LOTSE_IMAGE_BIN="$bin" bash scripts/build-image.sh; then
    ok "image built and ready"
  else
    fail "scripts/build-image.sh"
  fi
else
  missing podman
fi

echo "deploy checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
