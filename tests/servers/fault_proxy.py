#!/usr/bin/python3
"""A seeded fault-injecting proxy for the fault-injection end-to-end test
(tests/integration/test_faults.py). Standard library only.

It listens on 127.0.0.1 and forwards to one upstream server, speaking enough
of the protocol to put each fault at a message boundary:

  --protocol http       AWS JSON / Query services (--service kinesis, sqs,
                        sns, firehose: the shape of the answers it makes up)
  --protocol redis      RESP: commands (arrays) and replies
  --protocol memcached  the text protocol: storage commands, get, others

Each request (HTTP) or storage command (SET, MSET; memcached set/add/...)
draws from one random.Random(--seed), under a lock: with probability --rate
it gets a fault, its kind drawn from --kinds. What each kind does:

HTTP (the upstream sees nothing unless said):
  throttle      the service's throttling error (Kinesis 400
                ProvisionedThroughputExceededException, SQS/Firehose 400
                ThrottlingException, SNS 400 Throttling; one in four 429)
  error5xx      500 InternalFailure or 503 ServiceUnavailable, service-shaped
  reset         RST instead of an answer
  stall         no answer; the connection is closed after --stall-ms
  drop_answer   forwarded (the request is applied), the answer replaced by RST
  stall_answer  forwarded, the answer held --stall-ms, then the connection closed
  partial       Kinesis PutRecords / SQS SendMessageBatch: some entries taken
                out of the request before it is forwarded (never stored) and
                reported failed in the answer, at their places, as the
                service does (ProvisionedThroughputExceededException /
                InternalError, SenderFault false)
  incomplete    one entry taken out of the request, and the answer forwarded
                without it: a Kinesis answer with fewer Records than were
                sent, an SQS answer that neither lists the entry as
                Successful nor as Failed
  contradict    not forwarded; an answer that contradicts itself: Kinesis
                FailedRecordCount 1 with no failed entry (or 204 without a
                body), Firehose FailedPutCount 1 with no failed entry, SNS
                a PublishBatch XML cut short, SQS JSON cut short
Cache commands (the command is not forwarded unless said):
  wrong         a reply the command cannot get (memcached set: NOT_FOUND,
                OK, END, DELETED, a number, EXISTS, NOT_STORED, TOUCHED;
                Redis SET: an integer, a nil, QUEUED, an empty array, a bulk
                "OK", PONG, a nil array)
  error         an error reply (memcached SERVER_ERROR out of memory,
                CLIENT_ERROR, ERROR; Redis -LOADING, -ERR, -READONLY)
  garbage       random bytes, then the connection closed
  truncate      the first bytes of a success reply, then the connection closed
  stall         nothing; the connection is closed after --stall-ms
  huge          (Redis) a bulk header announcing 1 GB and 64 KiB of it, then
                the connection closed after --stall-ms
  reset         RST
  drop_reply    forwarded (stored), the reply replaced by RST
  extra         forwarded, and one success reply more than was asked for:
                memcached, in the same write as the real reply (the client
                waits for one reply per command, so the extra one is already
                in its buffer when it sends the next); Redis, once the
                connection has been idle 5 ms after its last reply (between
                two pipelines). The next storage command on that connection
                is then not forwarded and the connection is closed when its
                turn comes: a client that took the extra reply for that
                command's answer counts an unstored record as stored.
                (Redis: with probability --extra-rate each time a
                connection has answered everything and stayed idle 5 ms.)

Every fault is counted by kind, and listed with what it touched: the key
of a cache command (the key withheld after an extra reply too), the record
ids ("id": "..." in the data) of an HTTP request (of the entries taken out,
for partial and incomplete).

The first line on stdout is "PORT ADMIN_PORT". Admin (HTTP, JSON):
  GET  /stats      {"units", "faults": {kind: n}, "events": [[kind, key], ...],
                    "connections"}
  POST /config     {"rate": R, "kinds": [...]} (either)
  POST /pause      stop forwarding in both directions (cache protocols)
  POST /resume     forward again; ?drop=1 first closes every connection

Options: --parent-pid PID (exit when it is gone), --max-lifetime S.
"""

import argparse
import base64
import binascii
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

HTTP_KINDS = ("throttle", "error5xx", "reset", "stall", "drop_answer", "stall_answer",
              "partial", "incomplete", "contradict")
CACHE_KINDS = ("wrong", "error", "garbage", "truncate", "stall", "huge", "reset",
               "drop_reply", "extra")

MC_WRONG = [b"NOT_FOUND\r\n", b"OK\r\n", b"END\r\n", b"DELETED\r\n", b"12345\r\n",
            b"EXISTS\r\n", b"NOT_STORED\r\n", b"TOUCHED\r\n"]
MC_ERROR = [b"SERVER_ERROR out of memory storing object\r\n",
            b"CLIENT_ERROR bad data chunk\r\n", b"ERROR\r\n"]
REDIS_WRONG = [b":1\r\n", b"$-1\r\n", b"+QUEUED\r\n", b"*0\r\n", b"$2\r\nOK\r\n",
               b"+PONG\r\n", b"*-1\r\n"]
REDIS_ERROR = [b"-LOADING Redis is loading the dataset in memory\r\n",
               b"-ERR injected by fault_proxy\r\n",
               b"-READONLY You can't write against a read only replica.\r\n"]
MC_STORAGE = (b"set", b"add", b"replace", b"append", b"prepend", b"cas")
MC_MULTI = (b"get", b"gets", b"gat", b"gats", b"stats", b"config", b"lru_crawler")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.rate = args.rate
        self.kinds = [k for k in args.kinds.split(",") if k]
        self.units = 0
        self.faults = {}
        self.events = []
        self.connections = 0
        self.conns = set()
        self.running = threading.Event()
        self.running.set()

    def draw(self, allowed=None):
        """The fault for the next unit, or None. Also returns a private
        Random seeded from the shared one, for the fault's details."""
        with self.lock:
            self.units += 1
            kinds = [k for k in self.kinds if allowed is None or k in allowed]
            r = self.rng.random()
            sub = random.Random(self.rng.getrandbits(64))
            if not kinds or r >= self.rate:
                return None, sub
            return self.rng.choice(kinds), sub

    def count(self, kind, key=None):
        """key: the key (or list of record ids) the fault touched."""
        with self.lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1
            keys = key if isinstance(key, list) else [] if key is None else [key]
            for k in keys:
                if len(self.events) < 500000:
                    self.events.append([kind, k])

    def snapshot(self):
        with self.lock:
            return {"units": self.units, "faults": dict(self.faults),
                    "events": list(self.events), "connections": self.connections,
                    "rate": self.rate, "kinds": self.kinds}


STATE = None


def rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def fin_close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# --------------------------------------------------------------------------
# HTTP

class HttpClosed(Exception):
    pass


def read_until(sock, buf, sep, limit=1 << 20):
    while True:
        i = buf.find(sep)
        if i >= 0:
            return i
        if len(buf) > limit:
            raise HttpClosed("header too long")
        data = sock.recv(65536)
        if not data:
            raise HttpClosed("eof")
        buf += data


def read_exact(sock, buf, n):
    while len(buf) < n:
        data = sock.recv(max(65536, n - len(buf)))
        if not data:
            raise HttpClosed("eof")
        buf += data
    out = bytes(buf[:n])
    del buf[:n]
    return out


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        name, _, value = ln.partition(":")
        headers.append((name.strip(), value.strip()))
    return first, headers


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_message(sock, buf, response=False, head_only_status=False):
    """One HTTP message: (first line, headers, body)."""
    while True:
        i = read_until(sock, buf, b"\r\n\r\n")
        raw = bytes(buf[:i])
        del buf[:i + 4]
        first, headers = parse_head(raw)
        if response and first.split(" ")[1:2] and first.split(" ")[1].startswith("1"):
            continue  # 100 Continue and friends
        break
    te = (hget(headers, "transfer-encoding") or "").lower()
    if "chunked" in te:
        body = bytearray()
        while True:
            j = read_until(sock, buf, b"\r\n")
            size = int(bytes(buf[:j]).split(b";")[0], 16)
            del buf[:j + 2]
            if size == 0:
                read_until(sock, buf, b"\r\n")  # no trailers expected
                k = buf.find(b"\r\n")
                del buf[:k + 2]
                break
            body += read_exact(sock, buf, size)
            read_exact(sock, buf, 2)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        return first, headers, bytes(body)
    cl = hget(headers, "content-length")
    if cl is not None:
        return first, headers, read_exact(sock, buf, int(cl))
    if response:
        status = int(first.split(" ")[1])
        if status in (204, 304) or head_only_status:
            return first, headers, b""
        body = bytearray(buf)
        del buf[:]
        while True:
            data = sock.recv(65536)
            if not data:
                break
            body += data
        return first, headers, bytes(body)
    return first, headers, b""


def build(first, headers, body):
    out = [first]
    for k, v in headers:
        if k.lower() in ("content-length", "transfer-encoding"):
            continue
        out.append("%s: %s" % (k, v))
    out.append("Content-Length: %d" % len(body))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


def answer(status, reason, ctype, body, extra=()):
    if isinstance(body, str):
        body = body.encode()
    h = [("Content-Type", ctype), ("x-amzn-RequestId", "fault-proxy")] + list(extra)
    return build("HTTP/1.1 %d %s" % (status, reason), h, body)


def json_error(service, status, code, message):
    ctype = "application/x-amz-json-1.0" if service == "sqs" else "application/x-amz-json-1.1"
    reason = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}[status]
    return answer(status, reason, ctype, json.dumps({"__type": code, "message": message}),
                  [("x-amzn-ErrorType", code)])


def sns_error(status, code, message, sender):
    reason = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}[status]
    body = ('<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
            "<Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>"
            "<RequestId>fault-proxy</RequestId></ErrorResponse>"
            % ("Sender" if sender else "Receiver", code, message))
    return answer(status, reason, "text/xml", body)


def throttle_answer(service, rnd):
    status = 429 if rnd.random() < 0.25 else 400
    if service == "sns":
        return sns_error(status, "Throttling", "Rate exceeded", True)
    if service == "kinesis":
        return json_error(service, status, "ProvisionedThroughputExceededException",
                          "Rate exceeded for shard shardId-000000000000 in stream out "
                          "under account 123456789012.")
    return json_error(service, status, "ThrottlingException", "Rate exceeded")


def error5xx_answer(service, rnd):
    if rnd.random() < 0.5:
        status, code, msg = 500, "InternalFailure", "We encountered an internal error."
    else:
        status, code, msg = 503, "ServiceUnavailable", "Service is unavailable."
    if service == "sns":
        return sns_error(status, "InternalError" if status == 500 else code, msg, False)
    return json_error(service, status, code, msg)


def entries_field(service):
    return {"kinesis": "Records", "sqs": "Entries"}.get(service)


def contradict_answer(service, body, rnd):
    """(answer, variant name)."""
    if service == "kinesis":
        try:
            n = len(json.loads(body).get("Records") or [])
        except ValueError:
            n = 1
        if rnd.random() < 0.3:
            return build("HTTP/1.1 204 No Content", [("x-amzn-RequestId", "fault-proxy")],
                         b""), "204-no-body"
        recs = [{"SequenceNumber": "4963%052d" % i, "ShardId": "shardId-000000000000"}
                for i in range(n)]
        return answer(200, "OK", "application/x-amz-json-1.1",
                      json.dumps({"FailedRecordCount": 1, "Records": recs})), \
            "FailedRecordCount-without-failed-entry"
    if service == "firehose":
        try:
            n = len(json.loads(body).get("Records") or [])
        except ValueError:
            n = 1
        recs = [{"RecordId": "fault-proxy-%d" % i} for i in range(n)]
        return answer(200, "OK", "application/x-amz-json-1.1",
                      json.dumps({"FailedPutCount": 1, "Encrypted": False,
                                  "RequestResponses": recs})), \
            "FailedPutCount-without-failed-entry"
    if service == "sns":
        return answer(200, "OK", "text/xml",
                      '<?xml version="1.0"?>\n<PublishBatchResponse xmlns="http://sns.'
                      'amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>'), \
            "xml-cut-short"
    return answer(200, "OK", "application/x-amz-json-1.0",
                  '{"Successful":[{"Id":"0",'), "json-cut-short"


def cut_entries(service, body, rnd, incomplete):
    """Takes entries out of a Kinesis / SQS batch request. Returns (new body,
    removed positions) or None when the request has no entries to take."""
    field = entries_field(service)
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    entries = obj.get(field) if isinstance(obj, dict) else None
    if not isinstance(entries, list) or len(entries) < 2:
        return None
    n = len(entries)
    if incomplete:
        k = 1
    else:
        k = rnd.randint(1, max(1, min(n - 1, n // 4 + 1)))
    removed = sorted(rnd.sample(range(n), k))
    obj[field] = [e for i, e in enumerate(entries) if i not in set(removed)]
    return json.dumps(obj).encode(), removed, entries


def patch_partial(service, resp_body, removed, entries, incomplete):
    obj = json.loads(resp_body)
    if service == "kinesis":
        recs = obj.get("Records") or []
        if incomplete:
            return json.dumps(obj).encode()  # one entry fewer than sent
        out = []
        it = iter(recs)
        for i in range(len(entries)):
            if i in removed:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": "Rate exceeded for shard shardId-000000000000 "
                                            "in stream out under account 123456789012."})
            else:
                out.append(next(it))
        obj["Records"] = out
        obj["FailedRecordCount"] = int(obj.get("FailedRecordCount") or 0) + len(removed)
        return json.dumps(obj).encode()
    # sqs
    if not incomplete:
        failed = obj.setdefault("Failed", [])
        for i in removed:
            failed.append({"Id": entries[i]["Id"], "Code": "InternalError",
                           "Message": "injected by fault_proxy", "SenderFault": False})
    return json.dumps(obj).encode()


ID_RE = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9_-]{1,64})"')


def request_ids(service, body, only=None):
    """The record ids ("id": "...") carried by a request, for the fault log:
    Kinesis / Firehose Records[].Data (base64), SQS Entries[].MessageBody
    (or MessageBody), SNS form fields. only: entry positions to keep."""
    found = []
    try:
        if service in ("kinesis", "firehose", "sqs"):
            obj = json.loads(body)
            if service == "sqs":
                items = obj.get("Entries") or [{"MessageBody": obj.get("MessageBody", "")}]
                datas = [str(e.get("MessageBody", "")).encode() for e in items]
            else:
                items = obj.get("Records") or ([obj["Record"]] if "Record" in obj else [])
                datas = [base64.b64decode(e.get("Data", "")) for e in items]
            for i, d in enumerate(datas):
                if only is None or i in only:
                    found += [m.decode() for m in ID_RE.findall(d)]
        else:
            text = unquote_to_bytes(body.replace(b"+", b" "))
            found = [m.decode() for m in ID_RE.findall(text)]
    except (ValueError, TypeError, AttributeError, binascii.Error):
        pass
    return found


class HttpConn(threading.Thread):
    def __init__(self, csock, upstream, service, stall_ms):
        super().__init__(daemon=True)
        self.c = csock
        self.upstream = upstream
        self.service = service
        self.stall_ms = stall_ms
        self.u = None
        self.ubuf = bytearray()

    def up(self):
        if self.u is None:
            self.u = socket.create_connection(self.upstream, timeout=60)
            self.u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.ubuf = bytearray()
        return self.u

    def forward(self, first, headers, body):
        for attempt in range(2):
            try:
                u = self.up()
                u.sendall(build(first, headers, body))
                rfirst, rheaders, rbody = read_message(u, self.ubuf, response=True)
                if (hget(rheaders, "connection") or "").lower() == "close":
                    fin_close(u)
                    self.u = None
                if STATE.args.latency_ms:  # a service across a network
                    time.sleep(STATE.args.latency_ms / 1000.0)
                return rfirst, rheaders, rbody
            except (OSError, HttpClosed):
                if self.u is not None:
                    fin_close(self.u)
                self.u = None
                if attempt:
                    raise
        raise HttpClosed("upstream")

    def run(self):
        cbuf = bytearray()
        try:
            while True:
                try:
                    first, headers, body = read_message(self.c, cbuf)
                except (HttpClosed, OSError, ValueError):
                    break
                kind, rnd = STATE.draw()
                allowed_partial = (self.service in ("kinesis", "sqs") and
                                   ("PutRecords" in (hget(headers, "x-amz-target") or "") or
                                    "SendMessageBatch" in (hget(headers, "x-amz-target") or "")))
                if kind in ("partial", "incomplete") and not allowed_partial:
                    kind = "error5xx"
                if kind == "contradict" and self.service == "sns" and b"PublishBatch" not in body:
                    kind = "throttle"
                if kind is None:
                    rf, rh, rb = self.forward(first, headers, body)
                    self.c.sendall(build(rf, rh, rb))
                    continue
                if kind in ("partial", "incomplete"):
                    cut = cut_entries(self.service, body, rnd, kind == "incomplete")
                    if cut is None:
                        kind = "error5xx"
                ids = request_ids(self.service, body,
                                  set(cut[1]) if kind in ("partial", "incomplete") else None)
                label = kind
                if kind == "contradict":
                    contra, variant = contradict_answer(self.service, body, rnd)
                    label = "contradict:" + variant
                STATE.count(label, ids)
                if kind == "throttle":
                    self.c.sendall(throttle_answer(self.service, rnd))
                elif kind == "error5xx":
                    self.c.sendall(error5xx_answer(self.service, rnd))
                elif kind == "reset":
                    break
                elif kind == "stall":
                    time.sleep(self.stall_ms / 1000.0)
                    break
                elif kind == "drop_answer":
                    self.forward(first, headers, body)
                    break
                elif kind == "stall_answer":
                    self.forward(first, headers, body)
                    time.sleep(self.stall_ms / 1000.0)
                    break
                elif kind == "contradict":
                    self.c.sendall(contra)
                else:  # partial, incomplete
                    nbody, removed, entries = cut
                    rf, rh, rb = self.forward(first, headers, nbody)
                    if rf.split(" ")[1] == "200":
                        rb = patch_partial(self.service, rb, set(removed), entries,
                                           kind == "incomplete")
                    self.c.sendall(build(rf, rh, rb))
        except (OSError, HttpClosed, ValueError):
            pass
        rst_close(self.c)
        if self.u is not None:
            fin_close(self.u)


# --------------------------------------------------------------------------
# Redis and memcached

def resp_end(buf, i):
    """End offset of the RESP value at i, or None when incomplete."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        return None
    t = buf[i:i + 1]
    if t in (b"$",):
        n = int(buf[i + 1:j])
        if n < 0:
            return j + 2
        end = j + 2 + n + 2
        return end if len(buf) >= end else None
    if t == b"*":
        n = int(buf[i + 1:j])
        k = j + 2
        for _ in range(max(n, 0)):
            k = resp_end(buf, k)
            if k is None:
                return None
        return k
    return j + 2


def redis_command(buf):
    """(length, is_storage, key) of the first complete command, or None."""
    if not buf:
        return None
    if buf[:1] != b"*":
        j = buf.find(b"\r\n")
        return None if j < 0 else (j + 2, False, None)
    end = resp_end(buf, 0)
    if end is None:
        return None
    # the arguments
    args = []
    j = buf.find(b"\r\n")
    n = int(buf[1:j])
    k = j + 2
    for _ in range(n):
        e = buf.find(b"\r\n", k)
        ln = int(buf[k + 1:e])
        args.append(bytes(buf[e + 2:e + 2 + ln]))
        k = e + 2 + ln + 2
        if len(args) >= 2:
            break
    name = args[0].upper() if args else b""
    if name == b"SET" and len(args) > 1:
        return end, True, args[1].decode("utf-8", "replace")
    if name == b"MSET" and len(args) > 1:
        return end, True, args[1].decode("utf-8", "replace")
    return end, False, None


def mc_command(buf):
    """(length, kind, key, expects_reply) of the first complete command, or
    None. kind: storage, multi, line."""
    j = buf.find(b"\r\n")
    if j < 0:
        return None
    toks = bytes(buf[:j]).split()
    if not toks:
        return j + 2, "line", None, True
    name = toks[0].lower()
    if name in MC_STORAGE and len(toks) >= 5:
        n = int(toks[4])
        end = j + 2 + n + 2
        if len(buf) < end:
            return None
        noreply = toks[-1] == b"noreply"
        return end, "storage", toks[1].decode("utf-8", "replace"), not noreply
    if name in MC_MULTI:
        return j + 2, "multi", None, True
    return j + 2, "line", None, toks[-1] != b"noreply"


def mc_reply_end(buf, kind):
    if kind != "multi":
        j = buf.find(b"\r\n")
        return None if j < 0 else j + 2
    k = 0
    while True:
        j = buf.find(b"\r\n", k)
        if j < 0:
            return None
        line = bytes(buf[k:j])
        if line == b"END" or line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
            return j + 2
        toks = line.split()
        if toks and toks[0] in (b"VALUE", b"CONFIG") and len(toks) >= 4:
            end = j + 2 + int(toks[3]) + 2
            if len(buf) < end:
                return None
            k = end
        else:
            k = j + 2


class CacheConn:
    def __init__(self, csock, upstream, proto, stall_ms):
        self.c = csock
        self.proto = proto
        self.stall_ms = stall_ms
        self.u = socket.create_connection(upstream, timeout=None)
        self.u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.fifo = deque()      # entries in command order: [action, forwarded, key, kind, rnd]
        self.awaiting = deque()  # reply kinds of forwarded commands
        self.replies = deque()   # real replies not yet matched
        self.out = deque()
        self.out_cv = threading.Condition(self.lock)
        self.dead = False
        self.dropped = False
        self.armed = False
        self.last_activity = time.monotonic()
        self.positive = b"+OK\r\n" if proto == "redis" else b"STORED\r\n"
        for target in (self.c2s, self.s2c, self.writer):
            threading.Thread(target=target, daemon=True).start()

    # all under self.lock
    def emit(self, item):
        self.out.append(item)
        self.out_cv.notify_all()

    def kill(self, item):
        if not self.dead:
            self.dead = True
            self.emit(item)

    def advance(self):
        while self.fifo and not self.dead:
            action, forwarded, key, kind, rnd = self.fifo[0]
            if forwarded:
                if not self.replies:
                    return
                reply = self.replies.popleft()
                self.fifo.popleft()
                if action == "drop_reply":
                    self.kill(("rst", 0))
                elif action == "extra":
                    self.emit(reply + self.positive)
                    self.armed = True
                else:
                    self.emit(reply)
                continue
            self.fifo.popleft()
            if action in ("wrong", "error"):
                self.emit(rnd)  # the reply chosen when the command came
            elif action == "garbage":
                junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 64)))
                self.emit(junk if rnd.random() < 0.5 else b"HTTP/1.1 400 Bad Request\r\n" + junk)
                self.kill(("fin", 0))
            elif action == "truncate":
                self.emit(self.positive[:rnd.randint(1, len(self.positive) - 1)])
                self.kill(("fin", 0))
            elif action == "stall":
                self.kill(("fin", self.stall_ms))
            elif action == "huge":
                self.emit(b"$1000000000\r\n" + b"x" * 65536)
                self.kill(("fin", self.stall_ms))
            elif action == "reset":
                self.kill(("rst", 0))
            elif action == "withhold":
                self.kill(("fin", 0))
        if not self.fifo and not self.dead and self.proto == "redis":
            self.maybe_idle_extra()

    def maybe_idle_extra(self):
        if self.armed or "extra" not in STATE.kinds:
            return
        with STATE.lock:
            if STATE.rng.random() >= STATE.args.extra_rate:
                return
        stamp = self.last_activity

        def later():
            time.sleep(0.005)
            with self.lock:
                if self.dead or self.fifo or self.last_activity != stamp or self.armed:
                    return
                STATE.count("extra")
                self.emit(self.positive)
                self.armed = True
        threading.Thread(target=later, daemon=True).start()

    def c2s(self):
        buf = bytearray()
        try:
            while True:
                data = self.c.recv(262144)
                if not data:
                    break
                buf += data
                while True:
                    if self.proto == "redis":
                        got = redis_command(buf)
                        if got is None:
                            break
                        n, storage, key = got
                        reply_kind, expects = "line", True
                    else:
                        got = mc_command(buf)
                        if got is None:
                            break
                        n, reply_kind, key, expects = got
                        storage = reply_kind == "storage"
                    raw = bytes(buf[:n])
                    del buf[:n]
                    STATE.running.wait()
                    action, rnd = (None, None)
                    if storage and expects:
                        action, rnd = STATE.draw(allowed=CACHE_KINDS)
                        if action == "huge" and self.proto != "redis":
                            action = "stall"
                        if action == "extra" and self.proto == "redis":
                            action = None  # injected when the connection idles
                    label = action
                    if action in ("wrong", "error"):
                        choices = {("wrong", "redis"): REDIS_WRONG,
                                   ("wrong", "memcached"): MC_WRONG,
                                   ("error", "redis"): REDIS_ERROR,
                                   ("error", "memcached"): MC_ERROR}[(action, self.proto)]
                        variant = rnd.choice(choices)
                        rnd = variant
                        text = variant.decode().rstrip("\r\n")
                        label = "%s:%s" % (action, text.replace("\r\n", "\\r\\n")
                                           if "\r\n" in text else text.split(" ")[0])
                    with self.lock:
                        if self.dead:
                            return
                        self.last_activity = time.monotonic()
                        if storage and expects and self.armed:
                            action = label = "withhold"
                            self.armed = False
                        if action is not None:
                            STATE.count(label, key)
                        forwarded = action in (None, "drop_reply", "extra")
                        if expects:
                            self.fifo.append((action or "pass", forwarded, key, reply_kind, rnd))
                        if forwarded and expects:
                            self.awaiting.append(reply_kind)
                        if not forwarded:
                            self.advance()
                    if forwarded:
                        self.u.sendall(raw)
        except (OSError, ValueError):
            pass
        with self.lock:
            self.kill(("fin", 0))

    def s2c(self):
        buf = bytearray()
        try:
            while True:
                data = self.u.recv(262144)
                if not data:
                    break
                buf += data
                STATE.running.wait()
                with self.lock:
                    while self.awaiting:
                        if self.proto == "redis":
                            end = resp_end(buf, 0) if buf else None
                        else:
                            end = mc_reply_end(buf, self.awaiting[0])
                        if end is None:
                            break
                        self.awaiting.popleft()
                        self.replies.append(bytes(buf[:end]))
                        del buf[:end]
                    self.last_activity = time.monotonic()
                    self.advance()
                    if self.dead:
                        return
        except (OSError, ValueError):
            pass
        with self.lock:
            self.kill(("fin", 0))

    def writer(self):
        while True:
            STATE.running.wait()
            with self.lock:
                while not self.out:
                    self.out_cv.wait()
                item = self.out.popleft()
                if self.dropped and not isinstance(item, tuple):
                    continue
            if isinstance(item, tuple):
                how, delay = item
                if delay:
                    time.sleep(delay / 1000.0)
                (rst_close if how == "rst" else fin_close)(self.c)
                fin_close(self.u)
                return
            try:
                self.c.sendall(item)
            except OSError:
                with self.lock:
                    self.dead = True
                fin_close(self.c)
                fin_close(self.u)
                return

    def close(self):
        """Dropped by the admin (a cache server was killed): nothing more
        reaches the client, not even replies already read."""
        with self.lock:
            self.dropped = True
            self.out.clear()
            self.dead = False
            self.kill(("rst", 0))


# --------------------------------------------------------------------------

class Admin(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/stats"):
            return self.reply(STATE.snapshot())
        self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path.startswith("/config"):
            cfg = json.loads(body or b"{}")
            with STATE.lock:
                if "rate" in cfg:
                    STATE.rate = float(cfg["rate"])
                if "kinds" in cfg:
                    STATE.kinds = list(cfg["kinds"])
            return self.reply(STATE.snapshot())
        if self.path.startswith("/pause"):
            STATE.running.clear()
            return self.reply({"paused": True})
        if self.path.startswith("/resume"):
            if "drop=1" in self.path:
                with STATE.lock:
                    conns = list(STATE.conns)
                    STATE.conns.clear()
                for c in conns:
                    c.close()
            STATE.running.set()
            return self.reply({"paused": False})
        self.send_error(404)


def watchdog(parent, lifetime):
    start = time.time()
    while True:
        time.sleep(0.5)
        if parent and not os.path.exists("/proc/%d" % parent):
            os._exit(0)
        if lifetime and time.time() - start > lifetime:
            os._exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", required=True, choices=("http", "redis", "memcached"))
    p.add_argument("--upstream", required=True)
    p.add_argument("--service", default="")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--kinds", default="")
    p.add_argument("--extra-rate", type=float, default=0.0,
                   help="Redis: chance that an idle connection gets an extra reply")
    p.add_argument("--stall-ms", type=int, default=1500)
    p.add_argument("--latency-ms", type=int, default=0,
                   help="HTTP: every answer held this long (each connection on its own),"
                        " as a service across a network (bench.py --latency-ms)")
    p.add_argument("--parent-pid", type=int, default=0)
    p.add_argument("--max-lifetime", type=float, default=0)
    args = p.parse_args()
    global STATE
    STATE = State(args)
    host, _, port = args.upstream.rpartition(":")
    upstream = (host, int(port))

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    admin = ThreadingHTTPServer(("127.0.0.1", 0), Admin)
    admin.daemon_threads = True
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    threading.Thread(target=watchdog, args=(args.parent_pid, args.max_lifetime),
                     daemon=True).start()
    print("%d %d" % (ls.getsockname()[1], admin.server_address[1]), flush=True)
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with STATE.lock:
            STATE.connections += 1
        if args.protocol == "http":
            HttpConn(c, upstream, args.service, args.stall_ms).start()
        else:
            try:
                conn = CacheConn(c, upstream, args.protocol, args.stall_ms)
            except OSError:
                rst_close(c)  # upstream down: as a refused connection would
                continue
            with STATE.lock:
                STATE.conns.add(conn)


if __name__ == "__main__":
    sys.exit(main())
