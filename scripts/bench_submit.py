#!/usr/bin/env python3
"""`jiazheng submit` of a large workers file against DuckDB's plain COPY of the same file.

Generates the file with the release `ingest_benchmark` example (valid rows of one county of
the national tree), then runs, interleaved, RUNS times each:

- `jiazheng submit` into a fresh lake holding the national region tree (imported first, not
  timed): read, validate, pseudonymise, stage, commit, decide, refresh the indicators;
- DuckDB `COPY (SELECT * FROM read_csv_auto(file)) TO … (FORMAT parquet)`, the issue's
  reference, and the same with every ID number replaced by its SHA-256 (what pseudonymising
  costs DuckDB).

Time is wall-clock; memory is each process's peak resident set (`wait4`'s ru_maxrss; DuckDB's
includes the Python interpreter around it, ~30 MB). Prints medians and ratios and writes the
figures as JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COPY = "COPY (SELECT * FROM read_csv_auto('{csv}')) TO '{out}' (FORMAT parquet)"
COPY_SHA = (
    "COPY (SELECT * REPLACE (sha256(CAST(id_number AS VARCHAR)) AS id_number) "
    "FROM read_csv_auto('{csv}')) TO '{out}' (FORMAT parquet)"
)


def run(argv, env=None):
    """Runs a process to its end; returns (seconds, peak resident MiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace")[-2000:]
            sys.exit(f"{' '.join(argv[:2])} failed ({proc.returncode}): {tail}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jiazheng", required=True, help="the release jiazheng binary")
    ap.add_argument("--generator", required=True, help="the release ingest_benchmark example")
    ap.add_argument("--duckdb-python", required=True, help="a Python with duckdb installed")
    ap.add_argument("--regions", required=True, help="the NBS division files (sample-data/regions)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="write the figures here as JSON")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bench-submit-")
    csv_path = os.path.join(work, "workers.csv")
    subprocess.run([args.generator, "generate", csv_path, str(args.rows)], check=True)
    env = dict(os.environ, JIAZHENG_ID_HMAC_KEY="bench-submit-key-0123456789abcdef0123456789")
    env.pop("RUST_LOG", None)

    figures = {"jiazheng submit": [], "DuckDB COPY": [], "DuckDB COPY with sha256": []}
    for i in range(args.runs):
        lake = os.path.join(work, f"lake-{i}")
        subprocess.run(
            [args.jiazheng, "regions", "import", "--lake", lake, args.regions],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
        seconds, peak, out = run(
            [args.jiazheng, "submit", "--lake", lake, "--dataset", "workers",
             "--period", "2023H2", "--region", "152201", csv_path],
            env=env,
        )
        report = json.loads(out)
        if report["status"] != "accepted" or report["summary"]["rows"] != args.rows:
            sys.exit(f"jiazheng submit did not accept all {args.rows} rows: {out[:2000]}")
        figures["jiazheng submit"].append((seconds, peak))
        for name, sql in (("DuckDB COPY", COPY), ("DuckDB COPY with sha256", COPY_SHA)):
            target = os.path.join(work, f"duckdb-{i}.parquet")
            code = f"import duckdb; duckdb.sql({sql.format(csv=csv_path, out=target)!r})"
            figures[name].append(run([args.duckdb_python, "-c", code])[:2])
            os.remove(target)
        subprocess.run(["rm", "-rf", lake], check=True)

    size = os.path.getsize(csv_path)
    os.remove(csv_path)
    os.rmdir(work)
    summary = {}
    print(f"{args.rows:,} workers ({size / 2**20:.0f} MiB CSV), {args.runs} runs, medians:")
    reference = statistics.median(s for s, _ in figures["DuckDB COPY"])
    for name, runs in figures.items():
        seconds = statistics.median(s for s, _ in runs)
        peak = max(p for _, p in runs)
        summary[name] = {
            "seconds": [round(s, 3) for s, _ in runs],
            "median_seconds": round(seconds, 3),
            "peak_mib": round(peak),
            "times_duckdb_copy": round(seconds / reference, 2),
        }
        print(f"  {name:26} {seconds:6.2f} s  (min {min(s for s, _ in runs):.2f}, "
              f"max {max(s for s, _ in runs):.2f})  peak {peak:5.0f} MiB  "
              f"{seconds / reference:5.1f}× DuckDB COPY")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"rows": args.rows, "csv_bytes": size, "runs": summary}, f, indent=2)


if __name__ == "__main__":
    main()
