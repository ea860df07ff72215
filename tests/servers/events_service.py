#!/usr/bin/python3
"""Loopback Amazon EventBridge endpoint: PutEvents only, for the SDK example.

POST / with X-Amz-Target AWSEvents.PutEvents and Content-Type
application/x-amz-json-1.1, signed with SigV4 for signing name "events"
(checked with botocore by aws_service.verify_signature, against the keys
in --credentials, aws_service's format). The request is checked as the
service does (1 to 10 entries, Source, DetailType and Detail present,
Detail a JSON object, 256 KiB per entry, 1 MiB per request); the answer is
{"FailedEntryCount": n, "Entries": [{"EventId"} | {"ErrorCode",
"ErrorMessage"}]}, one entry per entry, in order. An entry whose Detail
has the key "fanoutFail" fails with ErrorCode InternalFailure, every time.

Control (no signature): GET /__received (accepted events: bus, source,
detailType, detail (parsed), eventId, region, accessKeyId), GET /__stats
(requests, failedEntries, authFailures). Prints its port on stdout; exits
when --parent-pid is gone.
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aws.core import AuthFailure, CredentialStore, verify_signature  # noqa: E402

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 262144
MAX_REQUEST_BYTES = 1048576
FAIL_KEY = "fanoutFail"


class State:
    def __init__(self, creds):
        self.creds = creds
        self.lock = threading.Lock()
        self.received = []
        self.stats = {"requests": 0, "failedEntries": 0, "authFailures": 0}


def put_events(state, body, akid, region):
    """(status, answer) for one PutEvents body."""
    try:
        req = json.loads(body)
        entries = req["Entries"]
        assert isinstance(entries, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        return 400, {"__type": "SerializationException", "message": "bad request body"}
    if not 1 <= len(entries) <= MAX_ENTRIES:
        return 400, {"__type": "ValidationException",
                     "message": "Entries must hold 1 to %d entries" % MAX_ENTRIES}
    total, out, stored = 0, [], []
    for e in entries:
        fields = [e.get(k) for k in ("Source", "DetailType", "Detail")]
        if not all(isinstance(f, str) and f for f in fields):
            out.append({"ErrorCode": "InvalidArgument",
                        "ErrorMessage": "Source, DetailType and Detail are required"})
            continue
        size = sum(len(f.encode()) for f in fields)
        total += size
        try:
            detail = json.loads(fields[2])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            out.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
        elif size > MAX_ENTRY_BYTES:
            out.append({"ErrorCode": "InvalidArgument", "ErrorMessage": "Entry too large"})
        elif FAIL_KEY in detail:
            out.append({"ErrorCode": "InternalFailure",
                        "ErrorMessage": "Internal service error (test)"})
        else:
            event_id = str(uuid.uuid4())
            out.append({"EventId": event_id})
            stored.append({"bus": e.get("EventBusName", "default"), "source": fields[0],
                           "detailType": fields[1], "detail": detail, "eventId": event_id,
                           "region": region, "accessKeyId": akid})
    if total > MAX_REQUEST_BYTES:
        return 400, {"__type": "ValidationException",
                     "message": "Total size of the entries in the request is over the limit."}
    failed = sum(1 for o in out if "ErrorCode" in o)
    with state.lock:
        state.received.extend(stored)
        state.stats["failedEntries"] += failed
    return 200, {"FailedEntryCount": failed, "Entries": out}


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with state.lock:
                if self.path == "/__received":
                    return self.answer(200, list(state.received))
                if self.path == "/__stats":
                    return self.answer(200, dict(state.stats))
            self.answer(404, {"message": "unknown path"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.stats["requests"] += 1
            if self.headers.get("X-Amz-Target") != "AWSEvents.PutEvents" or \
                    self.headers.get("Content-Type") != "application/x-amz-json-1.1":
                return self.answer(400, {"__type": "UnknownOperationException",
                                         "message": "PutEvents (JSON 1.1) only"})
            try:
                akid, region, _ = verify_signature(state.creds, "POST", self.path,
                                                   self.headers, body, "events")
            except AuthFailure as f:
                with state.lock:
                    state.stats["authFailures"] += 1
                return self.answer(403, {"__type": "InvalidSignatureException",
                                         "message": str(f)})
            self.answer(*put_events(state, body, akid, region))

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()
    state = State(CredentialStore(args.credentials))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True

    def watchdog():
        while args.parent_pid:
            time.sleep(0.2)
            try:
                os.kill(args.parent_pid, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
