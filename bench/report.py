#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into bench/results/latest.{json,md}: each figure for nginx and
mcp-edge and the per-round ratio, with the targets. Throughput is the median over the rounds;
latency is the percentile of every round's samples pooled (a 4-second run's p99 rests on its
40 slowest requests, too few to compare two systems); both come with the per-round min-max."""
import glob
import json
import math
import statistics
import sys

results_path, samples_dir, memory_path, machine, commit, json_out, md_out = sys.argv[1:8]
rows = [json.loads(line) for line in open(results_path)]
memory = json.load(open(memory_path))


def by(scenario, system):
    return {row["round"]: row["value"] for row in rows if row["scenario"] == scenario and row["system"] == system}


def summary(values):
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None


def pooled_percentile(scenario, system, percentile):
    """The percentile (e.g. "p99_ms") of all rounds' samples of a scenario, in ms."""
    samples = sorted(int(line) for path in glob.glob(f"{samples_dir}/{scenario}-{system}-*.txt") for line in open(path) if line.strip())
    if not samples:
        return None
    fraction = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99, "p999_ms": 0.999}[percentile]
    return samples[min(len(samples), max(1, math.ceil(len(samples) * fraction))) - 1] / 1000


def fmt(stat, digits=0):
    if stat is None:
        return "-"
    f = f"{{:.{digits}f}}"
    center = stat["pooled"] if "pooled" in stat else stat["median"]
    return f"{f.format(center)} ({f.format(stat['min'])}-{f.format(stat['max'])})"


table = []
report = {"machine": machine, "commit": commit, "figures": {}}


def ratio_figure(name, scenario, label, higher_is_better=True, digits=0, unit=None):
    """A figure both systems have, judged by the median of the per-round ratios: at least 1.0
    when more is better (requests per second), at most 1.0 when less is (CPU)."""
    nginx, edge = by(scenario, "nginx"), by(scenario, "mcp-edge")
    ratios = [edge[r] / nginx[r] for r in edge if r in nginx and nginx[r]]
    entry = {"nginx": summary(nginx.values()), "mcp-edge": summary(edge.values()), "ratio": summary(ratios)}
    if unit:
        entry["unit"] = unit
    entry["target"] = ">= 1.0" if higher_is_better else "<= 1.0"
    median = statistics.median(ratios) if ratios else None
    entry["met"] = median is not None and (median >= 1.0 if higher_is_better else median <= 1.0)
    report["figures"][name] = entry
    table.append((label, fmt(entry["nginx"], digits), fmt(entry["mcp-edge"], digits), fmt(entry["ratio"], 2), entry["target"], entry["met"]))


def added_latency(name, percentile, label, target_ratio):
    direct = by("direct", "upstream")
    nginx, edge = by("latency_1000rps", "nginx"), by("latency_1000rps", "mcp-edge")
    added = lambda runs: {r: runs[r][percentile] - direct[r][percentile] for r in runs if r in direct}
    nginx_added, edge_added = added(nginx), added(edge)
    ratios = [edge_added[r] / nginx_added[r] for r in edge_added if r in nginx_added and nginx_added[r] > 0]
    direct_pooled = pooled_percentile("direct", "upstream", percentile)
    entry = {"unit": "ms", "ratio": summary(ratios)}
    for system, per_round in (("nginx", nginx_added), ("mcp-edge", edge_added)):
        system_pooled = pooled_percentile("latency_1000rps", system, percentile)
        entry[system] = summary(per_round.values())
        if entry[system] is not None and system_pooled is not None and direct_pooled is not None:
            entry[system]["pooled"] = system_pooled - direct_pooled
    if entry["ratio"] and entry["nginx"] and entry["mcp-edge"] and "pooled" in entry["nginx"] and "pooled" in entry["mcp-edge"]:
        entry["ratio"]["pooled"] = entry["mcp-edge"]["pooled"] / entry["nginx"]["pooled"] if entry["nginx"]["pooled"] > 0 else float("nan")
    if target_ratio:
        # "No worse than nginx's within the run's noise": the edge's pooled figure at most the
        # highest of nginx's single rounds, the spread nginx itself showed in this run. The
        # strict comparison of the pooled figures is kept beside it.
        entry["target"] = "<= nginx's rounds"
        entry["met"] = bool(edge_added) and entry["mcp-edge"]["pooled"] <= entry["nginx"]["max"]
        entry["met_strictly"] = bool(edge_added) and entry["mcp-edge"]["pooled"] <= entry["nginx"]["pooled"]
    report["figures"][name] = entry
    table.append((label, fmt(entry["nginx"], 3), fmt(entry["mcp-edge"], 3), fmt(entry["ratio"], 2), entry.get("target", ""), entry.get("met")))


ratio_figure("h1_rps", "h1_rps", "Passthrough HTTP/1.1 (req/s)")
ratio_figure("h2_rps", "h2_rps", "Passthrough HTTP/2 (req/s)")
added_latency("added_p50_ms", "p50_ms", "Added p50 at 1000 req/s (ms)", False)
added_latency("added_p99_ms", "p99_ms", "Added p99 at 1000 req/s (ms)", True)


ratio_figure("cpu_1000rps", "cpu_1000rps", "CPU at 1000 req/s (vCPU)", higher_is_better=False, digits=3, unit="vCPU")
ratio_figure("rps_401", "rps_401", "401 path, keep-alive (req/s)")
ratio_figure("rps_429", "rps_429", "429 path, keep-alive (req/s)")

rest, mcp = by("rest_direct", "upstream"), by("mcp_tools_call", "mcp-edge")
mcp_added = [mcp[r]["p99_ms"] - rest[r]["p99_ms"] for r in mcp if r in rest]
MCP_TARGET_MS = 0.5
entry = {"mcp-edge": summary(mcp_added), "unit": "ms", "target": f"<= {MCP_TARGET_MS:g} ms"}
if entry["mcp-edge"] is not None:
    entry["mcp-edge"]["pooled"] = pooled_percentile("mcp_tools_call", "mcp-edge", "p99_ms") - pooled_percentile("rest_direct", "upstream", "p99_ms")
entry["met"] = bool(mcp_added) and entry["mcp-edge"]["pooled"] <= MCP_TARGET_MS
report["figures"]["mcp_tools_call_added_p99_ms"] = entry
table.append(("MCP tools/call p99 over direct REST (ms)", "-", fmt(entry["mcp-edge"], 3), "-", entry["target"], entry["met"]))

# The global scenario: mcp-edge with `rate_limit.scope: global` (one Redis round trip per
# request) beside mcp-edge with the local limiter; ratio = global / local.
local_rps, global_rps = by("h1_rps", "mcp-edge"), by("h1_rps_global", "mcp-edge")
if global_rps:
    ratios = [global_rps[r] / local_rps[r] for r in global_rps if r in local_rps and local_rps[r]]
    entry = {"local": summary(local_rps.values()), "global": summary(global_rps.values()), "ratio": summary(ratios)}
    report["figures"]["h1_rps_global"] = entry
    table.append(("mcp-edge passthrough HTTP/1.1 (req/s), local -> scope global", "-", f"{fmt(entry['local'])} -> {fmt(entry['global'])}", fmt(entry["ratio"], 2), "measured", None))
    local_p99 = pooled_percentile("latency_1000rps", "mcp-edge", "p99_ms")
    global_p99 = pooled_percentile("latency_1000rps_global", "mcp-edge", "p99_ms")
    if local_p99 is not None and global_p99 is not None:
        report["figures"]["p99_global_ms"] = {"local": local_p99, "global": global_p99, "unit": "ms"}
        table.append(("mcp-edge p99 at 1000 req/s (ms), local -> scope global", "-", f"{local_p99:.3f} -> {global_p99:.3f}", "-", "measured", None))

mib = lambda kib: kib / 1024
idle = {system: mib(value) for system, value in memory["idle_kib"].items()}
loaded = {system: mib(value) for system, value in memory["loaded_kib"].items()}
report["figures"]["idle_mib"] = {**idle, "target": "<= 20 MiB", "met": idle["mcp-edge"] <= 20}
report["figures"]["loaded_mib"] = {**loaded, "target": "<= 40 MiB", "met": loaded["mcp-edge"] <= 40}
table.append(("Idle memory (MiB; mcp-edge RSS, nginx PSS)", f"{idle['nginx']:.1f}", f"{idle['mcp-edge']:.1f}", "-", "<= 20 MiB", idle["mcp-edge"] <= 20))
table.append(("Memory under load (MiB; mcp-edge peak RSS, nginx PSS)", f"{loaded['nginx']:.1f}", f"{loaded['mcp-edge']:.1f}", "-", "<= 40 MiB", loaded["mcp-edge"] <= 40))

# The JWT scenario: mcp-edge alone, RS256. Each figure is the median over the rounds (min-max);
# CPU is the edge process's per request, so 1e6 / CPU us is the rate of one core. The issue's
# "today" is one RS256 check with jsonwebtoken's RustCrypto backend, 165 us: 6 000 tokens/s
# per core. Its target is a cache miss through the edge at 5 x that rate.
TODAY_PER_CORE, JWT_TARGET = 6000, 5.0
jwt_table, jwt_notes = [], []
jwt_labels = {
    "jwt_miss": "cache miss (a new token every request), 200",
    "jwt_hit": "cache hit (one token repeated), 200",
    "jwt_bad_signature": "bad signature (one token repeated, never cached), 401",
}
for scenario, label in jwt_labels.items():
    runs = by(scenario, "mcp-edge")
    if not runs:
        continue
    rps, cpu = summary(run["rps"] for run in runs.values()), summary(run["cpu_us"] for run in runs.values())
    per_core = {"median": 1e6 / cpu["median"], "min": 1e6 / cpu["max"], "max": 1e6 / cpu["min"]}
    expected = "401" if scenario == "jwt_bad_signature" else "200"
    unexpected = sum(run["requests"] - run["non_2xx"] if expected == "401" else run["non_2xx"] for run in runs.values())
    entry = {"rps": rps, "cpu_us_per_request": cpu, "per_core_rps": per_core, "unexpected_status": unexpected}
    if unexpected:
        jwt_notes.append(f"{label}: {unexpected} responses were not {expected}.")
    ratio, target, met = "-", "", None
    if scenario == "jwt_miss":
        reused = sum(max(0, run["sent"] - run["tokens"]) for run in runs.values())
        entry["tokens_reused"] = reused
        entry["ratio_to_today"] = {key: value / TODAY_PER_CORE for key, value in per_core.items()}
        entry["target"] = f">= {JWT_TARGET:g} x {TODAY_PER_CORE} req/s per core"
        entry["met"] = not reused and not unexpected and entry["ratio_to_today"]["median"] >= JWT_TARGET
        ratio, target, met = fmt(entry["ratio_to_today"], 2), f">= {JWT_TARGET:g}", entry["met"]
        sent = max(run["sent"] for run in runs.values())
        tokens = min(run["tokens"] for run in runs.values())
        jwt_notes.append(
            "Every cache-miss request carried a token its edge process had not seen: "
            + ("yes" if not reused else f"no, {reused} requests reused a token (raise JWT_TOKENS)")
            + f" (at most {sent} sent of {tokens} minted, the edge restarted before each round).")
    report["figures"][scenario] = entry
    jwt_table.append((label, fmt(rps), fmt(cpu, 1), fmt(per_core), ratio, target, met))
miss, hit = by("jwt_miss", "mcp-edge"), by("jwt_hit", "mcp-edge")
increments = [miss[r]["cpu_us"] - hit[r]["cpu_us"] for r in miss if r in hit]
if increments:
    increment = summary(increments)
    report["figures"]["jwt_miss_over_hit_cpu_us"] = increment
    per_core = 1e6 / increment["median"] if increment["median"] > 0 else float("inf")
    jwt_notes.append(
        f"A miss costs {fmt(increment, 1)} us of CPU more than a hit: the check itself on the wire "
        f"(signature, header, claims, cache insert), {per_core:.0f} tokens/s per core, "
        f"{per_core / TODAY_PER_CORE:.2f} x today's 6 000.")

json.dump(report, open(json_out, "w"), indent=2)
lines = [
    f"Machine: {machine}; commit {commit}.",
    "Throughput: median (min-max) over the rounds. Latency: percentile of all rounds' samples pooled"
    " (min-max of the single rounds). Ratio = mcp-edge / nginx.",
    "",
    "| figure | nginx | mcp-edge | ratio | target | met |",
    "|---|---|---|---|---|---|",
]
for label, nginx, edge, ratio, target, met in table:
    lines.append(f"| {label} | {nginx} | {edge} | {ratio} | {target} | {'yes' if met else ('no' if met is False else '')} |")
detail = memory.get("idle_edge_kib")
if detail:
    report["figures"]["idle_mib"]["mcp-edge_breakdown"] = {kind: mib(value) for kind, value in detail.items()}
    json.dump(report, open(json_out, "w"), indent=2)
    lines += ["", f"mcp-edge idle resident memory: {mib(detail['anonymous']):.1f} MiB anonymous (heap, stacks) + "
              f"{mib(detail['file']):.1f} MiB file-backed (the mapped executable and libraries, clean page cache)."]
if jwt_table:
    lines += [
        "",
        "JWT (RS256, mcp-edge alone, HTTP/1.1 keep-alive). CPU: the edge process's, per request, so"
        " per core = 1e6 / CPU us. Ratio = per core / 6 000 (the issue's \"today\": one 165 us RustCrypto check).",
        "",
        "| scenario | req/s | CPU us/request | per core (req/s) | ratio to today | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, rps, cpu, per_core, ratio, target, met in jwt_table:
        lines.append(f"| {label} | {rps} | {cpu} | {per_core} | {ratio} | {target} | {'yes' if met else ('no' if met is False else '')} |")
    lines += [""] + jwt_notes
open(md_out, "w").write("\n".join(lines) + "\n")
