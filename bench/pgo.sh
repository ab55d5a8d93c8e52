#!/usr/bin/env bash
# Refreshes the profile for profile-guided optimisation, pgo/mcp-edge.profdata, which the
# release builds of `make bench` and the Dockerfile use (bench/README.md, "PGO"): builds
# mcp-edge with instrumentation, runs the bench's request mix through it (401, 429 and
# proxied HTTP/1.1 and HTTP/2, MCP tools/call) and merges what it counted. Run it after
# changes to the request path or a dependency update: a function whose code changed since
# the profile was taken is compiled without profile data (no error), so a stale profile
# loses its benefit function by function.
#
# usage: bench/pgo.sh            -> pgo/mcp-edge.profdata (then `make bench` to measure)
# env:   N (requests per training scenario, default 20000), BENCH_DIR (/tmp/mcp-edge-pgo)
# needs: llvm-profdata of rustc's LLVM major version (Debian: llvm-22 for rustc 1.95; the
#        script installs it when missing), nginx, h2load, curl (`make bench` installs those).
# time:  one release build with every dependency (the flags change them all) and the
#        training: about 12 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${BENCH_DIR:-/tmp/mcp-edge-pgo}
n=${N:-20000}
say() { echo "pgo: $*" >&2; }

llvm_major=$(rustc -vV | awk '/^LLVM version:/ {split($3, v, "."); print v[1]}')
profdata=/usr/lib/llvm-$llvm_major/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
  say "installing llvm-$llvm_major (llvm-profdata must match rustc's LLVM $llvm_major)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major" >/dev/null
fi
for tool in nginx h2load curl; do
  command -v "$tool" >/dev/null || { say "$tool is missing (make bench installs nginx and h2load)"; exit 1; }
done

rm -rf "$work"; mkdir -p "$work/build-profiles" "$work/profiles"
source bench/lib.sh
say "building instrumented (target/pgo-instrumented)"
# (Build scripts are instrumented too and leave their counts in build-profiles/.)
RUSTFLAGS="-Cprofile-generate=$work/build-profiles" \
  cargo build --release --locked --bin mcp-edge --target-dir target/pgo-instrumented >&2

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
bench_start_stand_in; pids+=($!)
bench_render_edge bench/mcp-edge.yaml 19643 19961
bench_render_edge bench/mcp-edge.yaml 19644 19962 100 20
edges=()
for port in 19643 19644; do
  LLVM_PROFILE_FILE="$work/profiles/edge-%p.profraw" \
    target/pgo-instrumented/release/mcp-edge run --config "$work/edge-$port.yaml" </dev/null >"$work/edge-$port.log" 2>&1 &
  pids+=($!); edges+=($!)
done
for url in https://127.0.0.1:19643/items https://127.0.0.1:19644/items; do
  for _ in $(seq 300); do curl -sk -o /dev/null "$url" && break; sleep 0.2; done
done

token=$bench_token
fast=https://127.0.0.1:19643
printf '%s' "$bench_call" > "$work/call.json"
train() { # name h2load-arguments...
  h2load "${@:2}" -n "$n" >"$work/h2load-$1.out" 2>&1 || { say "$1 failed: $(tail -3 "$work/h2load-$1.out")"; exit 1; }
  say "trained $1: $(awk '/^requests:/ {print $6, "done"}' "$work/h2load-$1.out")"
}
train 401_h1 --h1 -c 16 -H "authorization: Bearer wrong" "$fast/items"
train 200_h1 --h1 -c 16 -H "authorization: Bearer $token" "$fast/items"
train 200_h2 -c 16 -m 10 -H "authorization: Bearer $token" "$fast/items"
train 429_h1 --h1 -c 16 -H "authorization: Bearer $token" https://127.0.0.1:19644/items
train mcp_h1 --h1 -c 16 -d "$work/call.json" -H "authorization: Bearer $token" "${bench_call_headers[@]}" "$fast/mcp"
# A clean exit writes the profile (SIGTERM: graceful shutdown, then exit handlers).
for pid in "${edges[@]}"; do kill -TERM "$pid"; done
for pid in "${edges[@]}"; do wait "$pid" 2>/dev/null || true; done
ls "$work"/profiles/*.profraw >/dev/null 2>&1 || { say "no profile was written"; exit 1; }
# Not sparse: the functions the training never ran stay in with a count of zero, which is
# what tells LLVM they are cold (moved out of the hot code, optimised for size); a sparse
# profile (2 MB instead of 12) leaves them unmarked. Its own effect was not measured apart.
mkdir -p pgo
"$profdata" merge -o pgo/mcp-edge.profdata "$work"/profiles/*.profraw
say "wrote pgo/mcp-edge.profdata ($(du -h pgo/mcp-edge.profdata | cut -f1)) from commit $(git rev-parse --short HEAD)"
