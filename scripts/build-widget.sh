#!/usr/bin/env bash
# Builds the citizens' widget (widget/, leptos -> wasm32) into widget/dist/:
# lotse.js (the loader to embed), lotse_widget.js and lotse_widget_bg.wasm. Installs the
# wasm32 target and the wasm-bindgen CLI (the version widget/Cargo.lock pins) when missing.
# Prints the sizes, gzip included (the budget is 150,000 bytes for the loader, JS and WASM
# together: what a citizen downloads; the staff portal's module is not counted).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' widget/Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found: ${have:-none})" >&2
  # not --locked: the CLI's own lock file names a webpki-roots release some mirrors lack
  cargo install wasm-bindgen-cli --version "=$want" --quiet
fi

cargo build --release --locked --target wasm32-unknown-unknown --manifest-path widget/Cargo.toml
out=widget/dist
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir "$out.tmp" --out-name lotse_widget \
  "${CARGO_TARGET_DIR:-widget/target}/wasm32-unknown-unknown/release/lotse_widget.wasm"
# the staff portal's page (/portal/): the same crate with the `portal` feature, a module of
# its own so that citizens never download it
cargo build --release --locked --target wasm32-unknown-unknown --manifest-path widget/Cargo.toml --features portal
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir "$out.tmp" --out-name lotse_portal \
  "${CARGO_TARGET_DIR:-widget/target}/wasm32-unknown-unknown/release/lotse_widget.wasm"
# the loader asks for the module with a version, so that a new build is fetched at once
version=$(cat "$out.tmp/lotse_widget.js" "$out.tmp/lotse_widget_bg.wasm" | sha256sum | cut -c1-12)
sed "s/__LOTSE_VERSION__/$version/" widget/loader/lotse.js > "$out.tmp/lotse.js"
rm -rf "$out" && mv "$out.tmp" "$out"

total=0
for f in lotse.js lotse_widget.js lotse_widget_bg.wasm; do
  raw=$(wc -c < "$out/$f"); gz=$(gzip -9 -c "$out/$f" | wc -c); total=$((total + gz))
  printf '%-22s %8d bytes  %8d gzip\n' "$f" "$raw" "$gz"
done
printf '%-22s %8s        %8d gzip (budget 150000)\n' "total" "" "$total"
for f in lotse_portal.js lotse_portal_bg.wasm; do
  raw=$(wc -c < "$out/$f"); gz=$(gzip -9 -c "$out/$f" | wc -c)
  printf '%-22s %8d bytes  %8d gzip (staff portal)\n' "$f" "$raw" "$gz"
done
if [ "$total" -gt 150000 ]; then
  echo "error: the widget is over its size budget" >&2
  exit 1
fi
