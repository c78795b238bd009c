#!/usr/bin/env bash
# Builds the container image localhost/lotse:latest (deploy/Containerfile) FROM scratch: no
# base image is pulled. The root file system is assembled here from the release binary, the
# shared libraries it links (the build machine's Debian packages: libc, libm, libgcc_s), CA
# certificates, an /etc/passwd with the account `lotse` (10001), the widget, and in
# /usr/share/doc/lotse the third-party notices, the SBOM and docs/operations.md.
#
# Then it checks the image: it serves the Bad Boll test site (../shared/fixtures) on
# 127.0.0.1, starts the image (podman run; docker works too) with the model cache mounted
# read-only as `lotse up SITE --no-embed` (fetch nothing, crawl, serve), and asks /ready until
# it says "ready". Where the sandbox forbids running containers, it runs the image's
# entrypoint from the image's own root file system (exported and unpacked) under chroot, in
# the image's working directory, as its account and with its environment.
#
#   scripts/build-image.sh                     # build (release binary, widget) and check
#   LOTSE_IMAGE_BIN=path/to/lotse scripts/build-image.sh   # use this binary (CI: the debug one)
#   LOTSE_IMAGE_CHECK=0 scripts/build-image.sh # build only
#   LOTSE_IMAGE_RUN=chroot scripts/build-image.sh          # check without a container runtime
#
# Needs podman (Debian: apt-get install podman) or docker, and root for the chroot check.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${LOTSE_IMAGE:-localhost/lotse:latest}
bin=${LOTSE_IMAGE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -p lotse
  bin=${CARGO_TARGET_DIR:-target}/release/lotse
fi
[ -f widget/dist/lotse.js ] || bash scripts/build-widget.sh
engine=${LOTSE_CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
if [ -z "$engine" ]; then
  echo "error: neither podman nor docker found (Debian: apt-get install podman)" >&2
  exit 1
fi

work=$(mktemp -d)
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${container:-}" ]; then "$engine" rm -f "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the root file system ------------------------------------------------------------------
root=$work/context/rootfs
mkdir -p "$root"/{usr/bin,etc/ssl/certs,tmp,var/lib/lotse,usr/share/lotse}
install -m 0755 "$bin" "$root/usr/bin/lotse"
# every shared library the binary loads, the dynamic loader included, at its own path
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  cp -L --parents "$lib" "$root"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0::/root:/sbin/nologin\nlotse:x:10001:10001::/var/lib/lotse:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nlotse:x:10001:\n' > "$root/etc/group"
cp -r widget/dist "$root/usr/share/lotse/widget"
# what it contains and under which terms (scripts/licences.py)
mkdir -p "$root/usr/share/doc/lotse"
python3 scripts/licences.py notices -o "$root/usr/share/doc/lotse/THIRD-PARTY-NOTICES.md" >/dev/null
python3 scripts/licences.py sbom -o "$root/usr/share/doc/lotse/lotse.cdx.json" >/dev/null
cp docs/operations.md "$root/usr/share/doc/lotse/"
chmod 1777 "$root/tmp"
chown -R 10001:10001 "$root/var/lib/lotse"
cp deploy/Containerfile "$work/context/Containerfile"

"$engine" build --quiet -t "$image" -f "$work/context/Containerfile" "$work/context" >/dev/null
size=$("$engine" image inspect "$image" --format '{{.Size}}')
echo "built $image ($((size / 1024 / 1024)) MiB)"

[ "${LOTSE_IMAGE_CHECK:-1}" = 1 ] || exit 0

# ---- the check: crawl the test site with the image and ask its /ready --------------------
models=${LOTSE_MODEL_CACHE:-models/cache}
models=$(cd "$models" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
site_port=$(free_port)
testsite=$(dirname "$bin")/lotse-testsite
if [ ! -x "$testsite" ]; then
  cargo build --locked -p lotse-testsite
  testsite=${CARGO_TARGET_DIR:-target}/debug/lotse-testsite
fi
"$testsite" ../shared/fixtures/sites/bad-boll --port "$site_port" >"$work/site.log" 2>&1 &
site_pid=$!
trap 'kill $site_pid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$site_port/" 2>/dev/null && break; sleep 0.2; done
args=(up "http://127.0.0.1:$site_port/" --no-embed --delay-ms 0)

ask_ready() {
  for _ in $(seq 1 300); do
    if out=$(curl -fsS "http://127.0.0.1:$port/ready" 2>/dev/null) && grep -q '"status":"ready"' <<<"$out"; then
      echo "image $image: /ready -> $out"
      return 0
    fi
    if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [ -n "${container:-}" ] && [ "$("$engine" inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then break; fi
    sleep 1
  done
  echo "error: the image did not become ready" >&2
  return 1
}

mode=${LOTSE_IMAGE_RUN:-container}
if [ "$mode" = container ]; then
  container=lotse-image-check-$$
  if "$engine" run -d --name "$container" --network host -e "LOTSE_ADDR=127.0.0.1:$port" \
       -v "$models:/var/lib/lotse/models:ro" "$image" "${args[@]}" >/dev/null 2>"$work/run.err"; then
    if ask_ready; then exit 0; fi
    "$engine" logs "$container" >&2 || true
    exit 1
  fi
  echo "note: cannot run containers here ($(tail -1 "$work/run.err")); checking the image's root file system under chroot" >&2
  "$engine" rm -f "$container" >/dev/null 2>&1 || true
  container=
fi

# the image's own files, unpacked, run as its entrypoint with its environment and account
unpacked=$work/unpacked
mkdir -p "$unpacked"
container=$("$engine" create "$image")
"$engine" export "$container" | tar -x -C "$unpacked"
"$engine" rm -f "$container" >/dev/null; container=
mkdir -p "$unpacked/var/lib/lotse/models"
cp -al "$models/." "$unpacked/var/lib/lotse/models/" 2>/dev/null || cp -a "$models/." "$unpacked/var/lib/lotse/models/"
# the directories only: the model files are hard links to the cache, whose owner stays
chown 10001:10001 "$unpacked/var/lib/lotse" "$unpacked/var/lib/lotse/models"
mapfile -t envs < <("$engine" image inspect "$image" --format '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
envs=("${envs[@]/#LOTSE_ADDR=*/LOTSE_ADDR=127.0.0.1:$port}")
entry=$("$engine" image inspect "$image" --format '{{join .Config.Entrypoint " "}}')
user=$("$engine" image inspect "$image" --format '{{.Config.User}}')
workdir=$("$engine" image inspect "$image" --format '{{.Config.WorkingDir}}')
# as a container runtime starts it: root, working directory, account, environment, entrypoint
env -i "${envs[@]}" "$(command -v python3)" -c '
import os, sys
root, workdir, user, *argv = sys.argv[1:]
uid, gid = (int(x) for x in user.split(":"))
os.chroot(root)
os.chdir(workdir or "/")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execv(argv[0], argv)
' "$unpacked" "$workdir" "$user" $entry "${args[@]}" >"$work/serve.log" 2>&1 &
pid=$!
if ask_ready; then exit 0; fi
cat "$work/serve.log" >&2
exit 1
