# Shared by bench/run.sh, bench/instructions.sh and bench/pgo.sh (sourced, not run): the
# requests they send, the upstream stand-in and the policies rendered from the templates in
# bench/. The caller sets `root` (the checkout) and `work` (its scratch directory) first.

# The static bearer token of bench/mcp-edge.yaml and bench/nginx-edge.conf.
bench_token=BENCHTOKEN-0123456789

# An MCP tools/call of get_item in the stateless era (2026-07-28), and the headers that era
# asks for beside it (arguments both h2load and mcp-edge-loadgen take: `"${bench_call_headers[@]}"`).
bench_call='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_item","arguments":{"id":"1"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
bench_call_headers=(--header "content-type: application/json" --header "mcp-protocol-version: 2026-07-28"
  --header "mcp-method: tools/call" --header "mcp-name: get_item")

# The stand-in's answer: about 1 KB of JSON.
bench_body=$(python3 -c 'import json; print(json.dumps({"jsonrpc":"2.0","id":1,"result":{"items":[{"id":i,"name":"item-%04d"%i,"tags":["a","b"]} for i in range(22)]}}, separators=(",",":")))')

# A template of bench/ with __WORK__, __ROOT__ and __BODY__ filled, on standard output.
bench_render() { # template
  sed -e "s#__WORK__#$work#g" -e "s#__ROOT__#$root#g" -e "s#__BODY__#${bench_body//\"/\\\"}#g" "$1"
}

# A policy for mcp-edge from one of its templates, as $work/edge-PORT.yaml (scope local or
# global; store the `store:` value).
bench_render_edge() { # template port admin [rpm burst scope store]
  bench_render "$1" | sed -e "s#__PORT__#$2#g" -e "s#__ADMIN__#$3#g" -e "s#__RPM__#${4:-6000000}#g" \
    -e "s#__BURST__#${5:-1000000}#g" -e "s#__SCOPE__#${6:-local}#g" -e "s#__STORE__#${7:-{backend: memory\}}#g" \
    > "$work/edge-$2.yaml"
}

# The upstream stand-in (nginx on 127.0.0.1:18080, bench/nginx-upstream.conf) in the
# background, with what precedes its command (e.g. `taskset -c 0`); its pid in $!.
bench_start_stand_in() { # [command prefix...]
  mkdir -p "$work/nginx-prefix/logs"
  bench_render "$root/bench/nginx-upstream.conf" > "$work/upstream.conf"
  "$@" "${nginx_bin:-nginx}" -p "$work/nginx-prefix" -c "$work/upstream.conf" </dev/null >/dev/null 2>&1 &
}
