#!/usr/bin/env bash
# Runs the store's tests (the portal's records, the rewrite store with its review decisions,
# the ratings, the import of older versions' files) and the server's portal tests
# (authorisation matrix, canary isolation, uploads, external-model blocking, governance, OIDC
# sign-in) and the replica test (two `lotse serve` sharing the database and the index) against
# PostgreSQL: a private, throw-away cluster on 127.0.0.1, started here and
# stopped on exit. Every test gets a fresh database of its own (lotse_portal::store::testing).
#
# Without PostgreSQL's server programs it prints "skipped" and exits 0, unless
# LOTSE_REQUIRE_POSTGRES=1 (CI), which makes that an error. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && bin="$d"
done
if [ -z "$bin" ] && command -v initdb >/dev/null 2>&1; then bin="$(dirname "$(command -v initdb)")"; fi
if [ -z "$bin" ]; then
  if [ "${LOTSE_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "error: PostgreSQL is not installed (apt-get install postgresql) and LOTSE_REQUIRE_POSTGRES=1" >&2
    exit 1
  fi
  echo "PostgreSQL tests skipped: no initdb found (apt-get install postgresql)"
  exit 0
fi

# the first free port from 55432 on (a server left by an interrupted run keeps its port)
port="${LOTSE_TEST_PG_PORT:-}"
if [ -z "$port" ]; then
  for p in $(seq 55432 55531); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
  done
  port="${port:-55432}"
fi
dir="$(mktemp -d /tmp/lotse-pg.XXXXXX)"
# initdb and postgres refuse to run as root: use Debian's postgres account then
as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as=(runuser -u postgres --)
fi
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -U lotse -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

export LOTSE_TEST_POSTGRES="postgres://lotse@127.0.0.1:$port/postgres"
cargo test --locked -p lotse-portal --lib "$@"
# the portal and OIDC modules of the server's test binary (tests/it)
cargo test --locked -p lotse-server --test it "$@" -- portal:: oidc::
# two replicas of the real binary on one database and one index directory, behind a proxy;
# one killed during a load run (crates/cli/tests/replicas.rs)
cargo test --locked -p lotse --test replicas "$@" -- --nocapture
