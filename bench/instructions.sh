#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: deterministic to about 0.1 %,
# so a change can be measured on a machine too busy for `make bench` (where other work
# moves requests per second by tens of percent). User-space instructions only: the kernel's
# share (send, recv) and cache effects are not in it; `make bench` remains the judge.
#
# usage: bench/instructions.sh [BINARY...]   (default: target/release/mcp-edge)
# env:   N (requests measured per scenario, default 1000), BENCH_DIR (/tmp/mcp-edge-instructions),
#        KEEP (set: keep each profile as BENCH_DIR/BINARY.SCENARIO.callgrind for callgrind_annotate)
# needs: valgrind, nginx, h2load, curl (the first run installs valgrind when it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${BENCH_DIR:-/tmp/mcp-edge-instructions}
n=${N:-1000}
binaries=("$@"); [ ${#binaries[@]} -gt 0 ] || binaries=("$root/target/release/mcp-edge")
say() { echo "instructions: $*" >&2; }
command -v valgrind >/dev/null || { say "installing valgrind"; apt-get install -y -qq valgrind >/dev/null; }
for tool in nginx h2load curl callgrind_control; do
  command -v "$tool" >/dev/null || { say "$tool is missing (make bench installs nginx and h2load)"; exit 1; }
done
mkdir -p "$work"
source bench/lib.sh
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

bench_start_stand_in; pids+=($!)
bench_render_edge bench/mcp-edge.yaml 19543 19951
token=$bench_token
url=https://127.0.0.1:19543/items
printf '%s' "$bench_call" > "$work/call.json"

for binary in "${binaries[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" --dump-instr=no \
    "$binary" run --config "$work/edge-19543.yaml" </dev/null >"$work/edge.log" 2>&1 & pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do curl -sk -o /dev/null "$url" && break; sleep 0.2; done
  measure() { # scenario h2load-arguments...
    h2load "${@:2}" -n 200 >/dev/null 2>&1          # warm up: caches, pools, the JIT-free steady state
    callgrind_control -z "$pid" >/dev/null 2>&1
    h2load "${@:2}" -n "$n" >"$work/h2load.out" 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1; sleep 1
    local profile; profile=$(ls -t "$work"/callgrind."$pid"* | head -1)
    local total; total=$(awk '/^(summary|totals):/ {print $2; exit}' "$profile")
    local done_count; done_count=$(awk '/^requests:/ {print $6}' "$work/h2load.out")
    [ "$done_count" = "$n" ] || { say "$1: only $done_count of $n requests completed"; exit 1; }
    printf '%-40s %-10s %8d instructions/request\n' "$(basename "$binary")" "$1" $((total / n))
    if [ -n "${KEEP:-}" ]; then mv "$profile" "$work/$(basename "$binary").$1.callgrind"; fi
    rm -f "$work"/callgrind."$pid"*
  }
  measure 401_h1 --h1 -c 4 -H "authorization: Bearer wrong" "$url"
  measure 200_h1 --h1 -c 4 -H "authorization: Bearer $token" "$url"
  measure 200_h2 -c 4 -m 10 -H "authorization: Bearer $token" "$url"
  # MCP tools/call (2026-07-28, stateless) of get_item: the REST call to the stand-in included.
  measure mcp_call --h1 -c 4 -d "$work/call.json" -H "authorization: Bearer $token" "${bench_call_headers[@]}" "${url%/items}/mcp"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
