#!/usr/bin/env python3
"""Compares one run of the MCP conformance suite with conformance/expected-failures.txt.

Usage: compare.py ERA RESULTS_DIR RUN_LOG BASELINE [SUMMARY_JSON]

RESULTS_DIR is the suite's `-o` folder (one `server-<scenario>-<timestamp>/checks.json` per
scenario), RUN_LOG its standard output (whose "Running scenario" lines name every scenario it
started, so one that died before writing its checks still counts, as a failure). A check
fails when its status is FAILURE or WARNING (the suite's own baseline rule).

The baseline holds lines `ERA ENTRY KIND: REASON`, where ENTRY is a scenario (every check of
it may fail) or `scenario:check-id` (only that check may), and KIND is `n/a` (does not apply
to a tools gateway) or `todo` (a gap, with the issue that closes it). A scenario is reported
as passed, "partly n/a" (every failing check is a listed n/a check: it passes what applies),
n/a, todo, skipped (no check passed or failed) or unexpected. This exits non-zero on
a failure the baseline does not excuse and on a baseline entry of ERA that no longer fails
(stale), so the list stays the truth. SUMMARY_JSON receives the counts README quotes.
"""

import glob
import json
import os
import re
import sys

FAILING = {"FAILURE", "WARNING"}
TIMESTAMP = re.compile(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
STARTED = re.compile(r"^=== Running scenario: (\S+) ===")


def read_baseline(path, era):
    entries = {}
    with open(path) as baseline:
        for number, line in enumerate(baseline, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 2)
            if len(fields) < 3 or not re.match(r"^(n/a|todo):", fields[2]):
                sys.exit(f"{path}:{number}: expected `ERA ENTRY n/a|todo: REASON`, got: {line}")
            if fields[0] == era:
                entries[fields[1]] = fields[2]
    for entry in entries:
        scenario, _, check = entry.partition(":")
        if check and scenario in entries:
            sys.exit(f"{path}: {era} lists {scenario} whole and {entry}: keep one")
    return entries


def read_results(results_dir, run_log):
    """scenario → list of (check id, status)."""
    scenarios = {}
    for path in glob.glob(os.path.join(results_dir, "**", "checks.json"), recursive=True):
        folder = os.path.relpath(os.path.dirname(path), results_dir)
        scenario = TIMESTAMP.sub("", folder)
        scenario = scenario[len("server-"):] if scenario.startswith("server-") else scenario
        with open(path) as checks:
            scenarios[scenario] = [(check.get("id", "?"), check.get("status", "?")) for check in json.load(checks)]
    with open(run_log, errors="replace") as log:
        for line in log:
            started = STARTED.match(line.strip())
            if started and started.group(1) not in scenarios:
                scenarios[started.group(1)] = [("(no checks written)", "FAILURE")]
    return scenarios


def main():
    era, results_dir, run_log, baseline_path = sys.argv[1:5]
    summary_path = sys.argv[5] if len(sys.argv) > 5 else None
    baseline = read_baseline(baseline_path, era)
    scenarios = read_results(results_dir, run_log)
    if not scenarios:
        sys.exit(f"conformance {era}: the suite ran no scenario (see {run_log})")

    unexpected, used = [], set()
    counts = {"passed": 0, "partly n/a": 0, "skipped": 0, "n/a": 0, "todo": 0, "unexpected": 0}
    rows = []
    for scenario in sorted(scenarios):
        checks = scenarios[scenario]
        failing = sorted({check for check, status in checks if status in FAILING})
        kinds = set()
        bad = []
        for check in failing:
            entry = f"{scenario}:{check}" if f"{scenario}:{check}" in baseline else scenario
            if entry in baseline:
                used.add(entry)
                kind = baseline[entry].split(":", 1)[0]
                # A scenario excused only check by check for n/a reasons passes what applies.
                kinds.add("partly n/a" if kind == "n/a" and entry != scenario else kind)
            else:
                bad.append(check)
        if bad:
            verdict = "unexpected"
            unexpected.extend(f"{scenario}:{check}" for check in bad)
        elif not failing and any(status == "SUCCESS" for _, status in checks):
            verdict = "passed"
        elif not failing:
            # Nothing failed and nothing passed: every check was skipped (the suite's tier
            # count does not call that a pass either).
            verdict = "skipped"
        elif "todo" in kinds:
            verdict = "todo"
        elif "n/a" in kinds:
            verdict = "n/a"
        else:
            verdict = "partly n/a"
        counts[verdict] += 1
        passed = sum(1 for _, status in checks if status == "SUCCESS")
        rows.append(f"  {verdict:<11} {scenario} ({passed}/{len(checks)} checks passed)")

    stale = []
    for entry in sorted(baseline):
        scenario, _, check = entry.partition(":")
        if entry in used:
            continue
        if scenario not in scenarios:
            stale.append(f"{entry} (the scenario did not run)")
        elif check and check not in {c for c, _ in scenarios[scenario]}:
            stale.append(f"{entry} (the check was not reported)")
        else:
            stale.append(f"{entry} (passes now)")

    print(f"conformance {era}: {len(scenarios)} scenarios")
    print("\n".join(rows))
    for failure in unexpected:
        print(f"conformance {era}: UNEXPECTED FAILURE {failure} (fix it, or add it to {baseline_path} with why)")
    for entry in stale:
        print(f"conformance {era}: STALE BASELINE ENTRY {entry}: remove it from {baseline_path}")
    total = len(scenarios)
    print(
        f"conformance {era}: of {total} scenarios {counts['passed']} pass, {counts['partly n/a']} pass every "
        f"check that applies, {counts['n/a']} do not apply, "
        f"{counts['todo']} are known gaps, {counts['skipped']} skipped everything, {counts['unexpected']} unexpected"
    )
    if summary_path:
        with open(summary_path, "w") as summary:
            json.dump({"era": era, "scenarios": total, **counts, "stale": len(stale)}, summary)
    sys.exit(1 if unexpected or stale else 0)


if __name__ == "__main__":
    main()
