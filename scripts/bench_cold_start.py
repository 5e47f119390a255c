#!/usr/bin/env python3
"""Cold start of the API Lambda's bootstrap under a Lambda Runtime API emulator.

Each run evicts the binary (and, where the kernel lets us, the whole page cache) so the
bootstrap is read from disk as on a fresh Lambda instance, starts it with the environment
Lambda gives a function, hands it one API Gateway event through the Runtime API
(`/2018-06-01/runtime/invocation/next`) and stops the clock when its response is posted.
It prints the artifact's size and the min/median/max of: start → first `next` (init) and
start → response (first answer), and checks the answer's status.

    scripts/bench_cold_start.py --bootstrap $CARGO_TARGET_DIR/lambda/api/bootstrap \
        --lake /tmp/lake --event functions/api/events/apigw-v2-outlet-coverage.json
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import threading
import time


class Emulator(http.server.ThreadingHTTPServer):
    """The two Runtime API calls a first invocation makes, with the times they arrived."""

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.served = False
        self.first_next = None
        self.response = None
        self.answered = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def do_GET(self):
        server = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if server.served:
            # The function asks for its second event: hold it until the run is over (the
            # function is killed then, and nobody reads an answer).
            server.answered.wait(30)
            self.close_connection = True
            return
        server.served = True
        server.first_next = time.perf_counter()
        body = json.dumps(server.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 29000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:cn-north-1:123456789012:function:jiazheng-api",
        )
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-65a4f1a2-1c2d3e4f5a6b7c8d9e0f1a2b")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.path.endswith("/response") or self.path.endswith("/error"):
            self.server.response = (time.perf_counter(), self.path, body)
            self.server.answered.set()


def evict(path, whole):
    """Drops the page cache: all of it (the lake's files too) where the kernel lets us and
    `whole` is asked for, else only the binary's pages."""
    os.sync()
    if whole:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return "whole page cache dropped"
        except OSError:
            pass
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return "binary's pages evicted"


def run(bootstrap, lake, event, whole):
    emulator = Emulator(event)
    threading.Thread(target=emulator.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{emulator.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "jiazheng-api",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/jiazheng-api",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
        "AWS_REGION": "cn-north-1",
        "JIAZHENG_LAKE": lake,
    }
    mode = evict(bootstrap, whole)
    start = time.perf_counter()
    child = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not emulator.answered.wait(60):
            raise SystemExit("the function did not answer within 60 s")
    finally:
        child.kill()
        child.wait()
        emulator.shutdown()
        emulator.server_close()
    answered, path, body = emulator.response
    if not path.endswith("/response"):
        raise SystemExit(f"the function reported an error: {body[:500]!r}")
    status = json.loads(body).get("statusCode")
    return (emulator.first_next - start) * 1000, (answered - start) * 1000, status, mode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--binary-only",
        action="store_true",
        help="evict only the binary's pages, not the whole page cache (for tests beside other work)",
    )
    args = parser.parse_args()
    with open(args.event) as f:
        event = json.load(f)
    inits, answers, statuses = [], [], set()
    for _ in range(args.runs):
        init, answer, status, mode = run(args.bootstrap, args.lake, event, not args.binary_only)
        inits.append(init)
        answers.append(answer)
        statuses.add(status)
    if statuses != {200}:
        raise SystemExit(f"the function answered {sorted(statuses)}, not 200")

    def spread(xs):
        return f"min {min(xs):.0f} / median {statistics.median(xs):.0f} / max {max(xs):.0f} ms"

    size = os.path.getsize(args.bootstrap)
    print(f"bootstrap {args.bootstrap}: {size:,} B ({size / 2**20:.1f} MiB); {mode}, {args.runs} runs")
    print(f"start → first /next (init):     {spread(inits)}")
    print(f"start → response (first answer): {spread(answers)}; status 200")


if __name__ == "__main__":
    main()
