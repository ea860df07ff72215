#!/usr/bin/python3
"""A small AWS Lambda Runtime API emulator for the runtime tests.

Standard library only. It listens on 127.0.0.1 and prints the port it bound
on the first line of stdout (flushed), then serves:

  GET  /2018-06-01/runtime/invocation/next
  POST /2018-06-01/runtime/invocation/{id}/response
  POST /2018-06-01/runtime/invocation/{id}/error
  POST /2018-06-01/runtime/init/error

Events come from --events FILE, a JSON list of objects:

  {"event": <JSON value, or a string sent verbatim as the body>,
   "deadlineMs": <epoch ms; null omits the header>,  (default now + 60 s)
   "timeoutMs": <deadline relative to when the event is served>,
   "traceId": <string; absent omits the header>,
   "requestId": <string sent as is, so tests can inject a bad id; null
                 omits the header>,                    (default a UUID)
   "functionArn": <string>}

Every request is appended to --output FILE as one JSON line:

  {"kind": "next"|"response"|"error"|"init_error"|"unknown"|"exit",
   "method", "path", "requestId", "status" (what we answered),
   "headers": {lower-case name: value}, "body" (UTF-8, invalid bytes
   replaced), "bodyLength", "bodySha256", "clientPort"}

Lines are written before the reply is sent, so a client that has its reply
can read its line.

Options for failure cases:
  --fail-posts            answer 500 to every POST
  --max-response-bytes N  answer 413 to a /response body over N bytes
  --exit-when-empty       on /next with no event left, exit at once (the
                          client sees the connection drop); by default the
                          request blocks until the process is killed
  --lowercase-headers     send the Lambda-Runtime-* header names in lower case
  --max-lifetime S        exit after S seconds whatever happens (a backstop
                          so a broken test never leaves us running)
  --parent-pid PID        exit when PID is no longer our parent
"""

import collections
import hashlib
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

PREFIX = "/2018-06-01"
NEXT_PATH = PREFIX + "/runtime/invocation/next"
INIT_ERROR_PATH = PREFIX + "/runtime/init/error"
INVOCATION_RE = re.compile(
    r"^" + re.escape(PREFIX) + r"/runtime/invocation/([^/]+)/(response|error)$")
DEFAULT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fanout-test"
DEFAULT_TIMEOUT_MS = 60000


class State:
    def __init__(self, args, events):
        self.args = args
        self.lock = threading.Lock()
        self.events = collections.deque(events)
        self.served = set()     # ids handed out by /next
        self.completed = set()  # ids with an accepted response or error

    def record(self, rec):
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        with self.lock:
            with open(self.args.output, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()

    def pop_event(self):
        with self.lock:
            return self.events.popleft() if self.events else None


def now_ms():
    return int(time.time() * 1000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Lambda's API
    # Headers and body go out in separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server_version = "runtime-emulator"
    sys_version = "python"

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        if self.server.state.args.verbose:
            super().log_message(format, *args)

    def _hname(self, name):
        return name.lower() if self.server.state.args.lowercase_headers else name

    def _record(self, kind, status, body=b"", request_id=None):
        self.server.state.record({
            "kind": kind,
            "method": self.command,
            "path": self.path,
            "requestId": request_id,
            "status": status,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
            "bodyLength": len(body),
            "bodySha256": hashlib.sha256(body).hexdigest(),
            "clientPort": self.client_address[1],
        })

    def _reply(self, status, doc, extra_headers=()):
        data = json.dumps(doc).encode()
        try:
            self.send_response(status)
            for name, value in extra_headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        state = self.server.state
        if self.path != NEXT_PATH:
            self._record("unknown", 404)
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        item = state.pop_event()
        if item is None:
            if state.args.exit_when_empty:
                self._record("exit", 0)
                os._exit(0)
            self._record("next", 0)
            threading.Event().wait()  # until the test kills us
            return

        ev = item.get("event", {})
        body = ev.encode("utf-8") if isinstance(ev, str) else \
            json.dumps(ev, separators=(",", ":")).encode("utf-8")
        request_id = item["requestId"] if "requestId" in item else str(uuid.uuid4())
        if "deadlineMs" in item:
            deadline = item["deadlineMs"]
        else:
            deadline = now_ms() + int(item.get("timeoutMs", DEFAULT_TIMEOUT_MS))

        headers = []
        if request_id is not None:
            headers.append((self._hname("Lambda-Runtime-Aws-Request-Id"), request_id))
            with state.lock:
                state.served.add(request_id)
        if deadline is not None:
            headers.append((self._hname("Lambda-Runtime-Deadline-Ms"), str(deadline)))
        headers.append((self._hname("Lambda-Runtime-Invoked-Function-Arn"),
                        item.get("functionArn", DEFAULT_ARN)))
        if item.get("traceId") is not None:
            headers.append((self._hname("Lambda-Runtime-Trace-Id"), item["traceId"]))
        self._record("next", 200, request_id=request_id)
        try:
            self.send_response(200)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client refused the event

    def do_POST(self):
        state = self.server.state
        body = serve.read_body(self)
        request_id = None
        m = INVOCATION_RE.match(self.path)
        if self.path == INIT_ERROR_PATH:
            kind = "init_error"
        elif m:
            request_id, kind = m.group(1), m.group(2)
        else:
            kind = "unknown"

        limit = state.args.max_response_bytes
        if state.args.fail_posts:
            status, doc = 500, {"errorType": "ServiceException",
                                "errorMessage": "emulated container error"}
        elif kind == "unknown":
            status, doc = 404, {"errorType": "NotFound", "errorMessage": self.path}
        elif kind == "response" and limit is not None and len(body) > limit:
            status, doc = 413, {
                "errorType": "RequestEntityTooLarge",
                "errorMessage": "Exceeded maximum allowed payload size (%d bytes)." % limit}
        elif request_id is not None and request_id not in state.served:
            status, doc = 400, {"errorType": "InvalidRequestID",
                                "errorMessage": "unknown request id"}
        elif request_id is not None and request_id in state.completed:
            status, doc = 400, {"errorType": "InvalidStateTransition",
                                "errorMessage": "invocation already completed"}
        else:
            status, doc = 202, {"status": "OK"}
            if request_id is not None:
                with state.lock:
                    state.completed.add(request_id)
        self._record(kind, status, body, request_id)
        self._reply(status, doc)


class Server(serve.Server):
    # A client that hung up mid-request is part of the tests.
    quiet_errors = (BrokenPipeError, ConnectionResetError)


def main():
    ap = serve.arguments(__doc__)
    ap.add_argument("--events", help="JSON list of events to serve")
    ap.add_argument("--output", required=True, help="JSON lines record of requests")
    ap.add_argument("--fail-posts", action="store_true")
    ap.add_argument("--max-response-bytes", type=int)
    ap.add_argument("--exit-when-empty", action="store_true")
    ap.add_argument("--lowercase-headers", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    events = []
    if args.events:
        with open(args.events, encoding="utf-8") as f:
            events = json.load(f)
        if not isinstance(events, list):
            ap.error("--events must hold a JSON list")
    open(args.output, "a").close()

    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args, events)
    serve.run(server, args, "runtime_emulator")


if __name__ == "__main__":
    main()
