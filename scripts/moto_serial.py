#!/usr/bin/env python3
"""moto's server with requests applied one at a time.

Real DynamoDB applies each conditional write atomically. moto's threaded server does not: two
concurrent conditional puts on one item can both pass their condition. The race tests (many
concurrent invocations, exactly one winner) would then test moto instead of sesguard. A lock
around the application serialises request handling (connections stay concurrent and
keep-alive), which restores the per-request atomicity those tests rely on.

usage: moto_serial.py -H HOST -p PORT
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # Consume the response inside the lock: the work happens while it is produced.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
