#!/usr/bin/env python3
"""Cold-start init time of sesguard-lambda: from process start to its first request to the
Lambda runtime API (`GET /2018-06-01/runtime/invocation/next`), against a minimal local runtime
API on a free loopback port. No AWS is contacted: building the clients and reading the
configuration is what init does.

usage: init_time.py BINARY [RUNS]      prints one line per run and the median in milliseconds
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time


def measure(binary: str) -> float:
    first_request = threading.Event()
    stamp = {}

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the runtime API's verb)
            if self.path.endswith("/runtime/invocation/next") and not first_request.is_set():
                stamp["t"] = time.perf_counter()
                first_request.set()
            # Answer nothing useful: the measurement ends at the request.
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
        AWS_LAMBDA_FUNCTION_NAME="sesguard",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        SESGUARD_TABLE_NAME="sesguard-state",
        SESGUARD_TOPIC_ARN="arn:aws:sns:us-east-1:111122223333:sesguard-signals",
        SESGUARD_CONFIG="sesguard.toml",
        # The pipeline heartbeat, on as the template deploys it (its SES client is built at the
        # first heartbeat run, not at init).
        SESGUARD_HEARTBEAT_ROLE_ARN="arn:aws:iam::111122223333:role/sesguard-SesguardFunctionRole-EXAMPLE",
        SESGUARD_HEARTBEAT_REGIONS="us-east-1",
        AWS_LAMBDA_LOG_LEVEL="warn",
    )
    start = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not first_request.wait(timeout=30):
            raise SystemExit("sesguard-lambda never asked the runtime API for an event")
        return (stamp["t"] - start) * 1000
    finally:
        process.kill()
        process.wait()
        server.shutdown()


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    results = []
    for i in range(runs):
        ms = measure(binary)
        results.append(ms)
        print(f"run {i + 1}: {ms:.1f} ms")
    print(f"median init time: {statistics.median(results):.1f} ms over {runs} runs")


if __name__ == "__main__":
    main()
