#!/usr/bin/env bash
# Side-by-side benchmark: mcp-edge against nginx with the same policy, on this machine.
#
# The system under test (nginx or mcp-edge, one worker each) is pinned to CPU 1; the load
# generators and the upstream stand-in (nginx returning ~1 KB of JSON) share CPU 0. Runs are
# interleaved A/B over ROUNDS rounds; every figure is reported for both with the ratio
# (throughput: median and min-max; latency: percentiles of the pooled samples). Before anything
# is timed, both must give 21 x 200 + 4 x 429 on 25 back-to-back requests and 401 for a bad
# token, or the run stops.
#
# The `global` scenario runs the 200 path with `rate_limit.scope: global` against a private
# redis-server (persistence off, on the load CPU): the cost of one Redis round trip per
# request, reported beside the local limiter.
#
# The JWT scenario runs mcp-edge alone (`auth.mode: jwt`, RS256 against the test JWKS file):
# saturation over HTTP/1.1 with a new token on every request (cache miss), with one token
# repeated (cache hit) and with one token whose signature is wrong (401), each with the
# edge's CPU time per request. The tokens are minted before anything is timed; the edge is
# restarted before each round's miss run, so no token reaches a process that has seen it.
#
# Environment: ROUNDS (3), RUN_SECONDS (3, each saturation run), LATENCY_SECONDS (6, each run
# at 1000 req/s; latency samples are pooled over the rounds), JWT_TOKENS (10 000 per
# RUN_SECONDS: distinct tokens for one miss run), BENCH_DIR (/tmp/mcp-edge-bench), PGO (1: build
# with pgo/mcp-edge.profdata; 0: without), BENCH_BINARIES (a directory of executables to
# measure instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${ROUNDS:-3}
seconds=${RUN_SECONDS:-3}
latency_seconds=${LATENCY_SECONDS:-6}
jwt_tokens=${JWT_TOKENS:-$((10000 * seconds))}
work=${BENCH_DIR:-/tmp/mcp-edge-bench}
rm -rf "$work" && mkdir -p "$work"
source bench/lib.sh
token=$bench_token
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say() { printf '== %s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------------------
missing=()
for tool in nginx:nginx wrk:wrk h2load:nghttp2-client taskset:util-linux curl:curl redis-server:redis-server; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo_cmd=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cpus=$(nproc)
sut_cpu=1; load_cpu=0
if [ "$cpus" -lt 2 ]; then sut_cpu=0; say "only one CPU: the system under test shares it with the load"; fi

# The release build as the Docker image makes it: with the profile in pgo/ (PGO=0 builds
# without it, for comparison). Its own target directory, because the flags change every
# crate and would otherwise rebuild target/release for `cargo build --release` and back.
# BENCH_BINARIES=DIR measures the three executables in DIR instead, built elsewhere (two
# commits side by side, or a rerun without the relink that each commit's build.rs causes).
if [ -n "${BENCH_BINARIES:-}" ]; then
  binaries=$BENCH_BINARIES
  say "measuring the executables in $binaries (no build)"
else
  if [ "${PGO:-1}" = 1 ]; then
    say "building mcp-edge, the load generator and the token minter (release, PGO: pgo/mcp-edge.profdata)"
    bench_target=$root/target/bench-pgo
    # Named by its digest: cargo does not look into a file the flags name, so a refreshed
    # profile has to change the flags to rebuild anything.
    profile=$bench_target/mcp-edge-$(sha256sum pgo/mcp-edge.profdata | cut -c1-16).profdata
    mkdir -p "$bench_target"; cp pgo/mcp-edge.profdata "$profile"
    export RUSTFLAGS="-Cprofile-use=$profile -Cllvm-args=-no-pgo-warn-mismatch"
  else
    say "building mcp-edge, the load generator and the token minter (release, no PGO)"
    bench_target=$root/target
  fi
  # One build of the library for the edge and the tools, with no features, as the Dockerfile
  # builds it and as the profile was trained: features are part of a crate's symbol names,
  # and a profile whose names do not match is silently unused (built with a feature, the PGO
  # gain fell by two thirds).
  cargo build --release --locked --bin mcp-edge --bin mcp-edge-loadgen --bin mcp-edge-mint \
    --target-dir "$bench_target" >&2
  unset RUSTFLAGS
  binaries=$bench_target/release
fi
edge_bin=$binaries/mcp-edge
loadgen=$binaries/mcp-edge-loadgen

# --- JWTs for the JWT scenario, minted on every core before anything runs ---------------
# The test key of tests/fixtures/jwt (kid rsa-1 in its jwks.json). An RSA signature costs
# about a millisecond, so this is the slow part of the scenario. The bad token is the hit
# token with the first character of its signature changed (still below the modulus, so the
# edge does the whole check before refusing it).
say "minting $jwt_tokens RS256 tokens"
mint() { "$binaries/mcp-edge-mint" --key tests/fixtures/jwt/rsa.key --kid rsa-1 \
  --issuer https://issuer.bench.example --audience mcp-edge-bench "$@" >&2; }
mint --count "$jwt_tokens" --prefix bench-miss --out "$work/jwt-miss.txt"
mint --count 1 --prefix bench-hit --out "$work/jwt-hit.txt"
jwt_hit=$(cat "$work/jwt-hit.txt"); signature=${jwt_hit##*.}
[ "${signature:0:1}" = A ] && first=B || first=A
echo "${jwt_hit%.*}.$first${signature:1}" > "$work/jwt-bad.txt"

# --- services ---------------------------------------------------------------------------
# A port already taken would let the readiness checks below talk to somebody else's server.
for port in 16379 18080 18443 18444 19443 19444 19445 19446 19447 19901 19902 19903 19904 19905; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is already in use (an earlier run still going?); stop it first"; exit 1
  fi
done
bench_start_stand_in taskset -c "$load_cpu"; pids+=($!)
bench_render bench/nginx-edge.conf > "$work/nginx.conf"
taskset -c "$sut_cpu" "$nginx_bin" -p "$work/nginx-prefix" -c "$work/nginx.conf" & pids+=($!)
nginx_master=$!

taskset -c "$load_cpu" redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null & pids+=($!)
start_edge() { # port admin rpm burst [scope]
  local scope=${5:-local} store='{backend: memory}'
  # A key prefix per edge: the two global edges have different limits, and one Redis bucket
  # per client shared between them would let the strict one's 429s spill into the other.
  [ "$scope" = global ] && store="{backend: redis, redis: {url: \"redis://127.0.0.1:16379/0\", key_prefix: \"bench-$1:\", timeout: 50ms}}"
  bench_render_edge bench/mcp-edge.yaml "$1" "$2" "$3" "$4" "$scope" "$store"
  taskset -c "$sut_cpu" "$edge_bin" run --config "$work/edge-$1.yaml" 2>"$work/edge-$1.log" & pids+=($!)
}
start_edge 19443 19901 6000000 1000000
edge_pid=$!
start_edge 19444 19902 100 20
start_edge 19445 19903 6000000 1000000 global
start_edge 19446 19904 100 20 global

wait_up() { for _ in $(seq 100); do curl -sk -o /dev/null "$1" && return 0; sleep 0.1; done; say "$1 did not come up"; exit 1; }
for url in http://127.0.0.1:18080/ https://127.0.0.1:18443/ https://127.0.0.1:18444/ http://127.0.0.1:19901/readyz http://127.0.0.1:19902/readyz http://127.0.0.1:19903/readyz http://127.0.0.1:19904/readyz; do wait_up "$url"; done
sleep 2
# The master and its worker (a worker's command line is "nginx: worker process", so a
# pattern on the configuration's path finds the master alone).
nginx_pids() { echo "$nginx_master" $(pgrep -P "$nginx_master"); }
pss_kib() { local total=0; for pid in "$@"; do total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup"))); done; echo "$total"; }
idle_edge=$(awk '/^VmRSS:/ {print $2}' "/proc/$edge_pid/status")
idle_edge_anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$edge_pid/status")
idle_edge_file=$(awk '/^RssFile:/ {print $2}' "/proc/$edge_pid/status")
idle_nginx=$(pss_kib $(nginx_pids))

# --- parity -----------------------------------------------------------------------------
ca=$root/certs.example/ca.crt
parity() { # url -> "200:21 429:4"
  local urls=(); for _ in $(seq 25); do urls+=(-o /dev/null "$1"); done
  curl -s --cacert "$ca" -H "Authorization: Bearer $token" -w '%{http_code}\n' "${urls[@]}" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}
for system in nginx:18444:18443 mcp-edge:19444:19443 mcp-edge-global:19446:19445; do
  IFS=: read -r name strict fast <<< "$system"
  got=$(parity "https://127.0.0.1:$strict/items")
  say "parity $name: $got"
  [ "$got" = "200:21 429:4 " ] || { say "parity failed for $name: expected 21 x 200 + 4 x 429"; exit 1; }
  # (on the unlimited port: mcp-edge limits before it authenticates, nginx after)
  bad=$(curl -s --cacert "$ca" -H "Authorization: Bearer wrong" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$fast/items")
  [ "$bad" = 401 ] || { say "parity failed: a bad token gave $bad on $name"; exit 1; }
done

# --- measurements -----------------------------------------------------------------------
results=$work/results.jsonl
load() { taskset -c "$load_cpu" "$@"; }
wrk_rps() { load wrk -t1 -c64 -d"${seconds}s" -H "Authorization: Bearer $1" "$2" | awk '/Requests\/sec/ {print $2}'; }
h2_rps() { load h2load -c16 -m10 -D "$seconds" -H "authorization: Bearer $token" "$1" 2>/dev/null | awk '/^finished in/ {gsub(",", "", $4); print $4}'; }
mkdir -p "$work/samples"
latency() { # scenario system round loadgen-args... (keeps every sample for pooling across rounds)
  local file="$work/samples/$1-$2-$3.txt"; shift 3
  load "$loadgen" --rate 1000 --seconds "$latency_seconds" --connections 16 --samples "$file" "$@"
}
record() { echo "{\"round\":$1,\"scenario\":\"$2\",\"system\":\"$3\",\"value\":$4}" >> "$results"; }
# CPU time of processes: utime + stime (every thread's, in clock ticks) from /proc/PID/stat.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() { local total=0 pid; for pid in "$@"; do total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'))); done; echo "$total"; }
sut_pids() { [ "$1" = nginx ] && nginx_pids || echo "$edge_pid"; }
now_ns() { date +%s%N; }
# The CPU the system under test spent over a stretch, in cores: ticks / CLK_TCK / seconds.
vcpu() { # ticks-before ns-before pids...
  local ticks=$1 start=$2; shift 2
  awk -v ticks=$(($(cpu_ticks "$@") - ticks)) -v hz="$clock_ticks" -v ns=$(($(now_ns) - start)) 'BEGIN {printf "%.4f", ticks / hz / (ns / 1e9)}'
}
port_of() { [ "$1" = nginx ] && echo "$2" || echo "$3"; }

for round in $(seq "$rounds"); do
  order=(nginx mcp-edge); [ $((round % 2)) = 0 ] && order=(mcp-edge nginx)
  say "round $round/$rounds (${order[*]})"
  direct=$(latency direct upstream "$round" --url http://127.0.0.1:18080/items)
  echo "{\"round\":$round,\"scenario\":\"direct\",\"system\":\"upstream\",\"value\":$direct}" >> "$results"
  for system in "${order[@]}"; do
    fast=$(port_of "$system" 18443 19443); strict=$(port_of "$system" 18444 19444)
    record "$round" h1_rps "$system" "$(wrk_rps "$token" "https://127.0.0.1:$fast/items")"
    record "$round" h2_rps "$system" "$(h2_rps "https://127.0.0.1:$fast/items")"
    # The same run gives the CPU at 1000 req/s: the system under test's, over the run's wall time.
    sut=$(sut_pids "$system"); ticks=$(cpu_ticks $sut); start=$(now_ns)
    record "$round" latency_1000rps "$system" "$(latency latency_1000rps "$system" "$round" --url "https://127.0.0.1:$fast/items" --ca "$ca" --header "Authorization: Bearer $token")"
    record "$round" cpu_1000rps "$system" "$(vcpu "$ticks" "$start" $sut)"
    record "$round" rps_401 "$system" "$(wrk_rps wrong "https://127.0.0.1:$fast/items")"
    record "$round" rps_429 "$system" "$(wrk_rps "$token" "https://127.0.0.1:$strict/items")"
  done
  rest=$(latency rest_direct upstream "$round" --url http://127.0.0.1:18080/api/items/1)
  echo "{\"round\":$round,\"scenario\":\"rest_direct\",\"system\":\"upstream\",\"value\":$rest}" >> "$results"
  mcp=$(latency mcp_tools_call mcp-edge "$round" --url https://127.0.0.1:19443/mcp --ca "$ca" --method POST --body "$bench_call" \
        --header "Authorization: Bearer $token" "${bench_call_headers[@]}")
  record "$round" mcp_tools_call mcp-edge "$mcp"
  # The global scenario: the same 200 path, the rate limit decided in Redis.
  record "$round" h1_rps_global mcp-edge "$(wrk_rps "$token" "https://127.0.0.1:19445/items")"
  record "$round" latency_1000rps_global mcp-edge "$(latency latency_1000rps_global mcp-edge "$round" --url "https://127.0.0.1:19445/items" --ca "$ca" --header "Authorization: Bearer $token")"
done
loaded_edge=$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")
loaded_nginx=$(pss_kib $(nginx_pids))
cat > "$work/memory.json" <<JSON
{"idle_kib":{"mcp-edge":$idle_edge,"nginx":$idle_nginx},"loaded_kib":{"mcp-edge":$loaded_edge,"nginx":$loaded_nginx},
 "idle_edge_kib":{"anonymous":$idle_edge_anon,"file":$idle_edge_file}}
JSON

# --- JWT: cache miss, cache hit, bad signature (mcp-edge alone) ---------------------------
# wrk sends the lines of a token file in turn (jwt-tokens.lua). The edge caches a verified
# token by its digest until it expires, so a miss run needs tokens no process has seen: the
# edge is restarted before each round, and the run reports how many requests were sent
# against how many tokens there were. CPU time is the edge process's utime + stime around the
# run, divided by the completed requests: microseconds of one core per request.
bench_render_edge bench/mcp-edge-jwt.yaml 19447 19905
jwt_run() { # round scenario token-file
  local before after output
  before=$(cpu_ticks "$jwt_pid")
  output=$(load wrk -t1 -c64 -d"${seconds}s" -s bench/jwt-tokens.lua https://127.0.0.1:19447/items -- "$3")
  after=$(cpu_ticks "$jwt_pid")
  awk -v round="$1" -v scenario="$2" -v ticks=$((after - before)) -v hz="$clock_ticks" '
    /requests in/ {requests = $1} /Requests\/sec/ {rps = $2} /Non-2xx/ {non_2xx = $5} /^jwt-tokens:/ {sent = $3; tokens = $5}
    END {printf "{\"round\":%d,\"scenario\":\"%s\",\"system\":\"mcp-edge\",\"value\":{\"rps\":%s,\"requests\":%d,\"cpu_us\":%.1f,\"non_2xx\":%d,\"sent\":%d,\"tokens\":%d}}\n",
         round, scenario, rps, requests, ticks * 1000000 / hz / requests, non_2xx, sent, tokens}' <<< "$output" >> "$results"
}
for round in $(seq "$rounds"); do
  say "JWT round $round/$rounds"
  taskset -c "$sut_cpu" "$edge_bin" run --config "$work/edge-19447.yaml" 2>"$work/edge-19447.log" & pids+=($!)
  jwt_pid=$!
  wait_up http://127.0.0.1:19905/readyz
  # Parity: the hit token passes, the bad one is refused (neither is one of the miss tokens).
  for check in "$jwt_hit:200" "$(cat "$work/jwt-bad.txt"):401"; do
    got=$(curl -s --cacert "$ca" -H "Authorization: Bearer ${check%:*}" -o /dev/null -w '%{http_code}' https://127.0.0.1:19447/items)
    [ "$got" = "${check##*:}" ] || { say "JWT parity failed: expected ${check##*:}, got $got"; exit 1; }
  done
  jwt_run "$round" jwt_miss "$work/jwt-miss.txt"
  jwt_run "$round" jwt_hit "$work/jwt-hit.txt"
  jwt_run "$round" jwt_bad_signature "$work/jwt-bad.txt"
  kill -INT "$jwt_pid"; wait "$jwt_pid" 2>/dev/null || true # SIGINT: no drain delay
done

mkdir -p bench/results
machine="$(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(uname -r), nginx $("$nginx_bin" -v 2>&1 | cut -d/ -f2), $(rustc --version)"
python3 bench/report.py "$results" "$work/samples" "$work/memory.json" "$machine" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  bench/results/latest.json bench/results/latest.md
cat bench/results/latest.md
