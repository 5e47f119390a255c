#!/usr/bin/env python3
"""The indicator refresh after one small file, against DuckDB computing every level from the
same files.

Runs the release `deadline_day small-file` example (the national region tree, COUNTIES
counties' six files loaded, then one more county's outlets file submitted and the period
refreshed, RUNS times in that process — a different county each run — and RUNS times in a
new one), then, on the lake it
left, DuckDB over the period's Parquet files: one GROUPING SETS query per dataset and
breakdown with every indicator's numerator and denominator (as scripts/verify_indicators.py
writes them) at every level — country, province, city, county and street — for the small
file's dataset (the reference: all a refresh after it has to recompute) and for every
dataset (a recomputation from scratch). DuckDB's time is the queries' alone, in a fresh
connection each run (no Python start). Prints medians and ratios; writes the figures as JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_indicators import INDICATORS  # noqa: E402  (the definitions, written once)

PERIOD = "2023H2"


def queries(lake, only=None):
    """One all-levels query per dataset (or only the one named) and breakdown, over the
    lake's Parquet files."""
    groups = {}
    for dataset, num, den, _unit, breakdown, people in INDICATORS.values():
        if only and dataset != only:
            continue
        # The CSV's `services` text is a list in the lake.
        num = num.replace("string_split(services, ';')", "services")
        measures = groups.setdefault((dataset, breakdown), [])
        measures.append(num)
        if isinstance(den, tuple) and den[0] == "rows":
            measures.append(den[1])
        if people:
            measures.append("count(DISTINCT id_number)")
    out = []
    for (dataset, breakdown), measures in sorted(groups.items(), key=str):
        files = f"{lake}/tables/{dataset}/period={PERIOD}/*/*.parquet"
        keys = ["l2", "l4", "l6"] + ([] if dataset == "enterprises" else ["l9"])
        extra = [breakdown] if breakdown else []
        sets = ", ".join(f"({', '.join(k + extra)})" for k in [[]] + [[key] for key in keys])
        street = "" if dataset == "enterprises" else ", substr(community_code, 1, 9) AS l9"
        out.append(
            f"""SELECT l2, l4, l6{', l9' if 'l9' in keys else ''}{''.join(', ' + e for e in extra)},
                   {', '.join(f'{m} AS m{i}' for i, m in enumerate(dict.fromkeys(measures)))}
                FROM (SELECT *, substr(county, 1, 2) AS l2, substr(county, 1, 4) AS l4,
                             county AS l6{street}
                      FROM read_parquet('{files}', hive_partitioning = true,
                                        hive_types_autocast = false))
                GROUP BY GROUPING SETS ({sets})"""
        )
    return out


def duckdb_seconds(sqls):
    con = duckdb.connect()
    started = time.perf_counter()
    rows = sum(len(con.execute(sql).fetchall()) for sql in sqls)
    seconds = time.perf_counter() - started
    con.close()
    return seconds, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deadline-day", required=True, help="the release deadline_day example")
    ap.add_argument("--counties", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="write the figures here as JSON")
    args = ap.parse_args()

    lake = tempfile.mkdtemp(prefix="bench-refresh-")
    report = json.loads(subprocess.run(
        [args.deadline_day, "small-file", "--lake", lake, "--counties", str(args.counties),
         "--runs", str(args.runs)],
        check=True, stdout=subprocess.PIPE,
    ).stdout)
    small = report["small_files"][0]
    rows = [f["rows"] for f in report["small_files"]]
    every = queries(lake)
    changed = queries(lake, only=small["dataset"])
    duck, duck_changed = [], []
    for _ in range(args.runs):
        duck.append(duckdb_seconds(every))
        duck_changed.append(duckdb_seconds(changed))
    subprocess.run(["rm", "-rf", lake], check=True)

    # The reference: what the file can change, its dataset's indicators at every level.
    reference = statistics.median(s for s, _ in duck_changed)
    lines = {
        "jiazheng refresh, same process": report["refresh_seconds"],
        "jiazheng refresh, new process": report["refresh_new_process_seconds"],
        f"DuckDB, {small['dataset']} at all levels ({duck_changed[0][1]:,} rows)":
            [s for s, _ in duck_changed],
        f"DuckDB, every dataset at all levels ({duck[0][1]:,} rows)": [s for s, _ in duck],
    }
    print(f"The reference: DuckDB, {small['dataset']} at all levels.")
    print(f"{report['counties_loaded']} counties loaded ({report['files_loaded']} files, "
          f"{report['rows_loaded']:,} rows); then {small['dataset']} of one more county per run "
          f"({min(rows)}–{max(rows)} rows). {args.runs} runs, medians:")
    figures = {}
    for name, seconds in lines.items():
        median = statistics.median(seconds)
        figures[name] = {"seconds": [round(s, 4) for s in seconds],
                         "median_seconds": round(median, 4),
                         "times_reference": round(median / reference, 2)}
        print(f"  {name:48} {median:7.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f})"
              f"  {median / reference:5.1f}× the reference")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"harness": report, "figures": figures}, f, indent=2)


if __name__ == "__main__":
    main()
