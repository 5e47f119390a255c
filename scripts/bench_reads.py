#!/usr/bin/env python3
"""Reads side by side: jiazheng's release build against ROAPI and Datasette serving the same
published values, the same query, on this machine, in one run (see scripts/bench).

The sample lake (national region tree, 兴安盟's counties) is loaded once; its published
outlet coverage of 兴安盟's counties is exported as Parquet (for ROAPI) and SQLite (for
Datasette), so the three answer the same rows. For each: requests per second and p99 under
`wrk -t2 -c32` (median of the runs), server CPU per request (from /proc), and the time from
process start to the first answer. For jiazheng also a revalidation (If-None-Match → 304)
and /v1/health, which bound what any handler could reach.
"""

import argparse
import csv
import io
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PERIOD = "2023H2"
LEAGUE = "152200"
QUERY = f"/v1/indicators/outlet_coverage?period={PERIOD}&region={LEAGUE}&level=county"
EXPORT = f"/v1/values?indicator=outlet_coverage&period={PERIOD}&region={LEAGUE}&level=county"
ROAPI_QUERY = "/api/tables/bench_values?filter[indicator]='outlet_coverage'"
DATASETTE_QUERY = "/bench/bench_values.json?indicator=outlet_coverage&_shape=array"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def until_answered(url, proc, timeout):
    """Seconds until `url` answers 200, polling every 5 ms."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before answering {url}")
        try:
            if fetch(url)[0] == 200:
                return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.005)
    sys.exit(f"no answer from {url} in {timeout} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds, pid, headers=()):
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    before = cpu_seconds(pid)
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        sys.exit(f"{url}: {bad.group(1)} answers were errors\n{out}")
    return {"rps": rps, "p99_ms": p99, "cpu_ms": 1000 * cpu / max(total, 1)}


def measured(url, runs, seconds, pid, headers=()):
    results = [wrk(url, seconds, pid, headers) for _ in range(runs)]
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


class Server:
    def __init__(self, name, args, base, ready_path, env=None):
        self.name, self.base = name, base
        start = time.monotonic()
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        until_answered(base + ready_path, self.proc, 900)
        self.started = time.monotonic() - start

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_time(make, runs):
    """Median of process start → first answer over fresh processes."""
    times = []
    for _ in range(runs):
        server = make()
        times.append(server.started)
        server.stop()
    return statistics.median(times)


def sqlite_from_csv(text, path):
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header, data = rows[0], rows[1:]
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE bench_values ({', '.join(header)})")
    db.executemany(
        f"INSERT INTO bench_values VALUES ({', '.join('?' for _ in header)})",
        [[None if v == "" else v for v in row] for row in data],
    )
    db.execute("CREATE INDEX by_indicator ON bench_values (indicator)")
    db.commit()
    db.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jiazheng", required=True)
    parser.add_argument("--tools", required=True, help="the bench virtualenv's bin directory")
    parser.add_argument("--samples", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", required=True, help="JSON file for the figures")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="jiazheng-bench-")
    lake = os.path.join(work, "lake")

    def jiazheng(samples=False):
        port = free_port()
        command = [args.jiazheng, "serve", "--lake", lake, "--addr", f"127.0.0.1:{port}",
                   "--rate-limit", "0"]
        if samples:
            command += ["--samples", args.samples]
        return Server("jiazheng", command, f"http://127.0.0.1:{port}", QUERY,
                     env={"RUST_LOG": "warn"})

    print("loading the sample lake…", file=sys.stderr)
    loaded = jiazheng(samples=True)
    _, _, parquet = fetch(loaded.base + EXPORT + "&format=parquet")
    _, _, text = fetch(loaded.base + EXPORT + "&format=csv")
    loaded.stop()
    values = os.path.join(work, "bench_values.parquet")
    with open(values, "wb") as f:
        f.write(parquet)
    db = os.path.join(work, "bench.db")
    sqlite_from_csv(text.decode("utf-8"), db)

    def roapi():
        port = free_port()
        return Server("ROAPI", [os.path.join(args.tools, "roapi"), "-a", f"127.0.0.1:{port}",
                                "-t", f"bench_values={values}"],
                      f"http://127.0.0.1:{port}", ROAPI_QUERY)

    def datasette():
        port = free_port()
        return Server("Datasette", [os.path.join(args.tools, "datasette"), "serve", "-i", db,
                                    "-h", "127.0.0.1", "-p", str(port)],
                      f"http://127.0.0.1:{port}", DATASETTE_QUERY)

    figures = {}
    for name, make, query in [("jiazheng", jiazheng, QUERY), ("ROAPI", roapi, ROAPI_QUERY),
                              ("Datasette", datasette, DATASETTE_QUERY)]:
        print(f"measuring {name}…", file=sys.stderr)
        figures[name] = {"start_to_first_answer_ms": 1000 * start_time(make, args.runs)}
        server = make()
        status, headers, body = fetch(server.base + query)
        rows = json.loads(body)
        rows = rows["data"] if isinstance(rows, dict) else rows
        figures[name]["rows"] = len(rows)
        figures[name]["query"] = measured(server.base + query, args.runs, args.seconds,
                                          server.proc.pid)
        if name == "jiazheng":
            etag = {k.lower(): v for k, v in headers.items()}["etag"]
            # wrk counts a 200 as success too: make sure these headers get the 304.
            revalidated = fetch(server.base + query, {"If-None-Match": etag})[0]
            if revalidated != 304:
                sys.exit(f"If-None-Match {etag} got {revalidated}, not 304")
            figures[name]["revalidate_304"] = measured(
                server.base + query, args.runs, args.seconds, server.proc.pid,
                [f"If-None-Match: {etag}"])
            figures[name]["health"] = measured(server.base + "/v1/health", args.runs,
                                               args.seconds, server.proc.pid)
        server.stop()
    figures["jiazheng"]["binary_mib"] = os.path.getsize(args.jiazheng) / 2**20

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(figures, f, indent=2)
    ours = figures["jiazheng"]
    print(f"\nreads, {args.runs} runs × {args.seconds} s of wrk -t2 -c32 (medians)\n")
    print("| what | jiazheng | ROAPI | Datasette | jiazheng ÷ ROAPI | jiazheng ÷ Datasette |")
    print("|---|---|---|---|---|---|")

    def row(label, key, fmt, higher_is_better=True):
        a, b, c = (figures[n]["query"][key] if key in figures[n]["query"] else figures[n][key]
                   for n in ("jiazheng", "ROAPI", "Datasette"))
        ratio = (lambda x, y: x / y) if higher_is_better else (lambda x, y: y / x)
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {fmt.format(c)} "
              f"| {ratio(a, b):.2f}× | {ratio(a, c):.2f}× |")

    row("outlet coverage of 兴安盟's counties, req/s", "rps", "{:.0f}")
    row("p99 latency, ms", "p99_ms", "{:.1f}", higher_is_better=False)
    row("server CPU per request, ms", "cpu_ms", "{:.2f}", higher_is_better=False)
    row("process start → first answer, ms", "start_to_first_answer_ms", "{:.0f}",
        higher_is_better=False)
    print(f"\n(ratios above 1× mean jiazheng is ahead; rows answered: "
          f"{ours['rows']} / {figures['ROAPI']['rows']} / {figures['Datasette']['rows']})")
    print(f"jiazheng If-None-Match → 304: {ours['revalidate_304']['rps']:.0f} req/s "
          f"(p99 {ours['revalidate_304']['p99_ms']:.1f} ms); /v1/health: "
          f"{ours['health']['rps']:.0f} req/s; release binary {ours['binary_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
