"""A fault-injecting HTTP proxy in front of moto, for the end-to-end test (python stdlib only).

    proxy = FaultProxy("http://127.0.0.1:<moto port>").start()
    # the function reaches it through AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SNS = proxy.url
    rule = proxy.add("dynamodb", "UpdateItem", ["throttle", "http500"])   # cycled, until cleared
    ...
    proxy.clear(); proxy.stop()

Requests are recognised by service and action: the service from the SigV4 credential scope of
the Authorization header (`.../us-east-1/dynamodb/aws4_request`), the action from the
`X-Amz-Target` header (JSON protocols: `DynamoDB_20120810.UpdateItem`) or the `Action` form field
(query protocol: SNS `Action=Publish`). A rule applies to the requests of its service and action
(and, with `match`, only to those whose body contains that text); it skips the first `skip` of
them, then applies to `times` of them (None: every one until the rule is removed), with its faults
taken in turn from `faults`:

  throttle     400 ThrottlingException (DynamoDB JSON) / 400 Throttling (SNS XML)
  provisioned  400 ProvisionedThroughputExceededException (DynamoDB)
  http500      500 InternalServerError (DynamoDB) / InternalError (SNS)
  http503      503 ServiceUnavailable
  slowdown     503 SlowDown (S3's throttling answer; S3 requests: a GET is `GetObject`)
  hold         never forwarded: the request is held until the rule is released (then it is
               forwarded), the client disconnects (then it is dropped) or the proxy stops
  drop         forwarded to moto (which acts on it), then the connection is closed without an
               answer: "the response was lost"

Every request is logged (service, action, what was done, the body); rules carry threading.Events
(`hit`, `abandoned`) so the test can wait for "the proxy received the request" or "the client of
a held request went away" instead of sleeping.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import select
import socket
import threading
import time
import urllib.parse
import uuid

FAULTS = ("throttle", "provisioned", "http500", "http503", "slowdown", "hold", "drop")
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Headers that belong to one hop, not to the message.
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Rule:
    def __init__(self, service, action, faults, times=None, skip=0, match=None):
        faults = [faults] if isinstance(faults, str) else list(faults)
        unknown = [f for f in faults if f not in FAULTS]
        if not faults or unknown:
            raise ValueError(f"faults must be some of {FAULTS}, got {faults}")
        self.service = service.lower()
        self.action = action
        self.faults = faults
        self.times = times
        self.skip = skip
        self.match = match.encode() if isinstance(match, str) else match
        self.seen = 0  # matching requests
        self.applied = 0  # of them, faulted
        self.hit = threading.Event()  # set at the first fault applied
        self.abandoned = threading.Event()  # a held request's client disconnected
        self.released = threading.Event()

    def matches(self, service, action, body):
        return (
            service == self.service
            and action == self.action
            and (self.match is None or self.match in body)
        )

    def release(self):
        """Held requests are forwarded from now on (and the rule holds no more)."""
        self.released.set()

    def __repr__(self):
        return f"Rule({self.service}:{self.action} {self.faults} applied {self.applied})"


class FaultProxy:
    def __init__(self, upstream):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.lock = threading.Lock()
        self.rules: list[Rule] = []
        self.log: list[dict] = []
        self.stopping = threading.Event()
        proxy = self

        class Handler(_Handler):
            pass

        Handler.proxy = proxy
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def add(self, service, action, faults, times=None, skip=0, match=None):
        rule = Rule(service, action, faults, times=times, skip=skip, match=match)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        """Removes every rule (held requests are then forwarded)."""
        with self.lock:
            rules, self.rules = self.rules, []
        for rule in rules:
            rule.release()

    def entries(self, service=None, action=None, outcome=None):
        with self.lock:
            return [
                e
                for e in self.log
                if (service is None or e["service"] == service)
                and (action is None or e["action"] == action)
                and (outcome is None or e["outcome"] == outcome)
            ]

    def mark(self):
        """A position in the log, for entries_since."""
        with self.lock:
            return len(self.log)

    def entries_since(self, position, service=None, action=None):
        with self.lock:
            return [
                e
                for e in self.log[position:]
                if (service is None or e["service"] == service) and (action is None or e["action"] == action)
            ]

    # -- used by the handler
    def decide(self, service, action, body):
        """(fault or None, rule) for one request; logs it."""
        with self.lock:
            fault, chosen = None, None
            for rule in self.rules:
                if not rule.matches(service, action, body):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                if rule.released.is_set() and "hold" in rule.faults:
                    continue
                fault = rule.faults[rule.applied % len(rule.faults)]
                rule.applied += 1
                chosen = rule
                break
            entry = {
                "service": service,
                "action": action,
                "outcome": fault or "forwarded",
                "body": body,
                "at": time.monotonic(),
            }
            self.log.append(entry)
        if chosen is not None:
            chosen.hit.set()
        return fault, chosen, entry

    def note(self, entry, outcome):
        with self.lock:
            entry["outcome"] = outcome


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy = None

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def classify(self, body):
        scope = _SCOPE.search(self.headers.get("Authorization") or "")
        service = scope.group(1).lower() if scope else ""
        target_header = self.headers.get("X-Amz-Target")
        if target_header:
            prefix, _, action = target_header.rpartition(".")
            if not service and prefix.startswith("DynamoDB"):
                service = "dynamodb"
            return service, action
        if service == "s3":
            # A REST API: the only S3 call the function makes is GetObject.
            return service, "GetObject" if self.command == "GET" else self.command
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        return service, (form.get("Action") or [""])[0]

    def handle_any(self):
        body = self.read_body()
        service, action = self.classify(body)
        fault, rule, entry = self.proxy.decide(service, action, body)
        json_protocol = bool(self.headers.get("X-Amz-Target"))
        if fault is None:
            self.forward(body)
        elif fault == "hold":
            self.hold(rule, entry, body)
        elif fault == "drop":
            self.forward(body, drop=True)
        else:
            self.error(fault, service, json_protocol)

    def hold(self, rule, entry, body):
        sock = self.connection
        while True:
            if rule.released.is_set():
                self.proxy.note(entry, "hold-released")
                self.forward(body)
                return
            if self.proxy.stopping.is_set():
                self.proxy.note(entry, "hold-stopped")
                self.close_connection = True
                return
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    peek = b""
                if not peek:  # the client went away: never forwarded
                    self.proxy.note(entry, "hold-abandoned")
                    self.close_connection = True
                    rule.abandoned.set()
                    return

    def forward(self, body, drop=False):
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP and k.lower() != "content-length"]
            status, reason = response.status, response.reason
        finally:
            conn.close()
        if drop:
            # moto has done the work; the client never hears of it.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, fault, service, json_protocol):
        status = {"throttle": 400, "provisioned": 400, "http500": 500, "http503": 503, "slowdown": 503}[fault]
        request_id = str(uuid.uuid4())
        if fault == "slowdown":
            data = (
                '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                "<Message>injected by fault_proxy: Please reduce your request rate.</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            ).encode()
            content_type = "application/xml"
            extra = [("x-amz-request-id", request_id)]
        elif json_protocol or service == "dynamodb":
            code = {
                "throttle": "ThrottlingException",
                "provisioned": "ProvisionedThroughputExceededException",
                "http500": "InternalServerError",
                "http503": "ServiceUnavailable",
            }[fault]
            namespace = "com.amazon.coral.availability" if fault in ("throttle", "http503") else "com.amazonaws.dynamodb.v20120810"
            data = json.dumps({"__type": f"{namespace}#{code}", "message": f"injected by fault_proxy: {fault}"}).encode()
            content_type = "application/x-amz-json-1.0"
            extra = [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
        else:
            code, kind = {
                "throttle": ("Throttling", "Sender"),
                "provisioned": ("Throttling", "Sender"),
                "http500": ("InternalError", "Receiver"),
                "http503": ("ServiceUnavailable", "Receiver"),
            }[fault]
            data = (
                '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                f"<Error><Type>{kind}</Type><Code>{code}</Code>"
                f"<Message>injected by fault_proxy: {fault}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
            extra = [("x-amzn-RequestId", request_id)]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
