#!/usr/bin/python3
"""An HTTP/1.1 test server that misbehaves on demand, for the HTTP tests.

Standard library only. It listens on 127.0.0.1 (port 0 unless --port) and
prints the port it bound on the first line of stdout (flushed). Connections
are kept alive. With --tls CERT KEY it speaks HTTPS; the handshake happens in
the connection's own thread, so a client that refuses the certificate only
breaks its own connection.

Paths (any method; the request body is always read first, but for /early):

  /early/<code>    answer <code> with {"early": true} at once, without
                   reading the request body, then read nothing more and
                   close after 20 s (?close=1: close at once, the unread
                   body making it an RST), as a front end refusing a body
                   too large does; ?drain=1: wait a second, read the body
                   and go on with the connection; counted in requests

  /status/<code>   answer <code> with the body given by ?body= (default
                   "{}"), ?content_type= (default application/json) and
                   any number of ?header=Name:Value
  /throttle/<n>    the first n requests for ?key= (default: the path) get
                   400 {"__type":"ThrottlingException","message":"Rate
                   exceeded"} (?status=429 for a 429), then 200 and the echo
  /fail/<n>        the first n requests for ?key= get 500, then the echo
  /reset           close without answering: an RST (?mode=fin: a FIN)
  /reset-mid       send the status line, headers and part of the body,
                   then an RST (?mode=fin: a FIN)
  /stall/<ms>      sleep, then the echo
  /stall-body/<ms> send the headers and half the body, sleep, then the rest
  /big/<bytes>     a body of that many bytes, byte i being i % 251
                   (?chunked=1: chunked, without a Content-Length)
  /echo-body       the request body, as sent
  /raw/<name>      exact bytes (RAW_ANSWERS below: framing a client must
                   get right), written at once or as the entry says;
                   /raw/drop-next answers, then drops the next request
                   that comes on that connection without a word (a FIN)
  CONNECT          (as a proxy asked to tunnel) refused with 403 and
                   counted in connects, the target kept in lastConnect
  /stats           the counters, as JSON (not counted)
  /control/reset-counters
                   zero the counters (not counted)
  anything else    the echo: JSON with method, path, query, target (the
                   request line's, absolute under a proxy), headers (lower-
                   case name: value), headerList ([name, value] as sent),
                   bodyLength, bodySha256, connectionId, connectionRequest
                   (1 for the first request on the connection), tls,
                   sni (the TLS server name the client sent, or null),
                   tlsResumed (whether the handshake resumed a session) and
                   tlsVersion ("TLSv1.3", "TLSv1.2"; null without TLS);
                   ?close=1: with Connection: close, and closed

Counters (/stats), since the start or the last reset: accepted (TCP
connections accepted), connections (connections whose first counted request
came: a connection reused after a reset is not counted again, so 0 says no
new connection carried a request), requests (counted requests),
inflight, maxInflight (most counted requests in progress at once), keys
(throttle and fail counts per key), connects (CONNECT requests) and
lastConnect (the last one's host:port).

With --tls the server offers ALPN h2 and http/1.1, as AWS endpoints do; a
client that picks h2 gets its connection closed unread (counted in
h2Connections): it would have sent HTTP/1.1 text to an HTTP/2 server.

Options: --tls CERT KEY, --tls12 (with --tls: TLS 1.2 at most, its
sessions resumed by session ID or ticket), --parent-pid PID (exit when that process is gone),
--max-lifetime S (exit after S seconds whatever happens: a backstop so a
broken test never leaves us running).
"""

import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

# A pattern block whose length is a multiple of 251, so slices of it
# continue the i % 251 sequence.
PATTERN = bytes(range(251)) * 4177


def _chunks(sizes):
    out = b""
    at = 0
    for n in sizes:
        out += b"%X\r\n" % n + PATTERN[at:at + n] + b"\r\n"
        at += n
    return out + b"0\r\n\r\n"


_OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# name: (bytes, how): how is "keep" (the connection stays open for more
# requests), "close" (closed after the bytes: a FIN, over TLS without
# close_notify, as a close injected by someone else would be), "notify" (as
# "close", but over TLS close_notify first), "bytes" (one byte a write,
# then kept) or "later" (the bytes, then 50 ms on, an extra answer nobody
# asked for, then kept).
RAW_ANSWERS = {
    "chunked-ext": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                    b"5;name=value\r\nhello\r\n1\r\n,\r\n6 ; ext=\"q\"\r\n world\r\n"
                    b"0\r\nX-Trailer: t\r\n\r\n", "keep"),
    "chunk-sizes": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + _chunks(range(1, 41)), "keep"),
    "bytewise": (b"HTTP/1.1 200 OK\r\nX-Slow: yes\r\nContent-Length: 5\r\n\r\nslow!",
                 "bytes"),
    "conn-close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                   "keep"),
    "http10": (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody to close",
               "close"),
    "http10-notify": (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                      b"body to close", "notify"),
    "continue": (b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok", "keep"),
    "switching": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "keep"),
    "extra-same": (_OK2 + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "keep"),
    "extra-later": (_OK2, "later"),
    # an answer of exactly 1 KiB, then another nobody asked for, written
    # together: one TLS record, its tail left in the client's TLS layer
    "extra-1k": (b"HTTP/1.1 200 OK\r\nContent-Length: 984\r\n\r\n" + b"k" * 984
                 + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "keep"),
    "short": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "close"),
    "chunk-short": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly",
                    "close"),
    "cl-same": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
                "keep"),
    "cl-conflict": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"
                    b"okk", "keep"),
    "cl-sign": (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "keep"),
    "garbage": (b"HTPT/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "keep"),
    "status-4": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", "keep"),
    "header-flood": (b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"X-Flood-%03d: %s\r\n" % (i, b"f" * 1000) for i in range(70))
        + b"Content-Length: 2\r\n\r\nok", "keep"),
    "chunk-overflow": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"FFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n", "keep"),
    "chunk-bad-end": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"2\r\nokXX\r\n0\r\n\r\n", "keep"),
    "drop-next": (_OK2, "keep"),
    "idle-close": (_OK2, "close"),
}


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.next_conn_id = 0
        self.reset()

    def reset(self):
        self.accepted = 0
        self.connections = 0
        self.requests = 0
        self.inflight = 0
        self.max_inflight = 0
        self.keys = {}
        self.connects = 0
        self.last_connect = ""
        self.h2_connections = 0

    def as_dict(self):
        return {
            "accepted": self.accepted,
            "connections": self.connections,
            "requests": self.requests,
            "inflight": self.inflight,
            "maxInflight": self.max_inflight,
            "keys": dict(self.keys),
            "connects": self.connects,
            "h2Connections": self.h2_connections,
            "lastConnect": self.last_connect,
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body
    # would wait for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "chaos-server"
    sys_version = "python"

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass

    def setup(self):
        c = self.server.counters
        with c.lock:
            c.accepted += 1
            c.next_conn_id += 1
            self.conn_id = c.next_conn_id
        self.conn_requests = 0
        self.conn_counted = False
        self.drop_next = False
        if self.server.tls:
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
            if self.request.selected_alpn_protocol() == "h2":
                # an HTTP/2 server (AWS endpoints offer h2) takes no
                # HTTP/1.1 text: counted, then closed as a GOAWAY would
                with c.lock:
                    c.h2_connections += 1
                self.h2 = True
        super().setup()

    def handle(self):
        if not getattr(self, "h2", False):
            super().handle()

    # every method goes the same way
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def do_CONNECT(self):
        c = self.server.counters
        with c.lock:
            c.connects += 1
            c.last_connect = self.path
        self.close_connection = True
        self._send(403, b"{}")

    def _dispatch(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "early" and parts[1].isdigit():
            self._early(int(parts[1]), parse_qs(url.query))
            return
        body = serve.read_body(self)
        if self.drop_next:
            self.close_connection = True  # a FIN, no answer
            return
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        c = self.server.counters
        if path == "/stats":
            with c.lock:
                doc = c.as_dict()
            self._send(200, json.dumps(doc).encode())
            return
        if path == "/control/reset-counters":
            with c.lock:
                c.reset()
            self._send(200, b"{}")
            return
        self.conn_requests += 1
        with c.lock:
            c.requests += 1
            if not self.conn_counted:
                self.conn_counted = True
                c.connections += 1
            c.inflight += 1
            c.max_inflight = max(c.max_inflight, c.inflight)
        try:
            self._route(path, query, body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        finally:
            with c.lock:
                c.inflight -= 1

    def _route(self, path, query, body):
        parts = path.strip("/").split("/")
        head, arg = parts[0], parts[1] if len(parts) > 1 else ""
        if head == "status" and arg.isdigit():
            self._status(int(arg), query)
        elif head in ("throttle", "fail") and arg.isdigit():
            key = query.get("key", [path])[0]
            c = self.server.counters
            with c.lock:
                seen = c.keys.get(key, 0) + 1
                c.keys[key] = seen
            if seen > int(arg):
                self._echo(body)
            elif head == "fail":
                self._send(500, b'{"__type":"InternalFailure","message":"injected failure"}')
            else:
                status = int(query.get("status", ["400"])[0])
                self._send(status, b'{"__type":"ThrottlingException",'
                                   b'"message":"Rate exceeded"}')
        elif head == "reset":
            self._drop(query)
        elif head == "reset-mid":
            self._write_raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            b"Content-Length: 100000\r\n\r\n" + PATTERN[:1000])
            time.sleep(0.05)
            self._drop(query)
        elif head == "stall" and arg.isdigit():
            time.sleep(int(arg) / 1000.0)
            self._echo(body)
        elif head == "stall-body" and arg.isdigit():
            data = PATTERN[:2000]
            self._write_raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(data) + data[:1000])
            time.sleep(int(arg) / 1000.0)
            self._write_raw(data[1000:])
        elif head == "big" and arg.isdigit():
            self._big(int(arg), query.get("chunked", ["0"])[0] == "1")
        elif head == "raw" and arg in RAW_ANSWERS:
            self._raw(arg)
        elif head == "echo-body":
            self._send(200, body, content_type="application/octet-stream",
                       headers=[("X-Body-Sha256", hashlib.sha256(body).hexdigest())])
        else:
            self._echo(body)

    def _echo(self, body):
        url = urlsplit(self.path)
        doc = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "target": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "headerList": [[k, v] for k, v in self.headers.items()],
            "bodyLength": len(body),
            "bodySha256": hashlib.sha256(body).hexdigest(),
            "connectionId": self.conn_id,
            "connectionRequest": self.conn_requests,
            "tls": self.server.tls,
            "sni": getattr(self.request, "fanout_sni", None),
            "tlsResumed": bool(self.server.tls and self.request.session_reused),
            "tlsVersion": self.request.version() if self.server.tls else None,
        }
        # ?close=1: answered with Connection: close, then closed
        close = parse_qs(url.query).get("close", [""])[0] == "1"
        self._send(200, json.dumps(doc).encode(),
                   headers=[("Connection", "close")] if close else ())

    def _status(self, code, query):
        body = query.get("body", ["{}"])[0].encode()
        headers = []
        for h in query.get("header", []):
            name, _, value = h.partition(":")
            headers.append((name, value))
        if code < 200 or code in (204, 304):
            body = None
        self._send(code, body,
                   content_type=query.get("content_type", ["application/json"])[0],
                   headers=headers)

    def _early(self, code, query):
        c = self.server.counters
        with c.lock:
            c.requests += 1
        self._send(code, b'{"early": true}')
        if query.get("drain", [""])[0] == "1":
            time.sleep(1)
            serve.read_body(self)
            return
        self.close_connection = True
        if query.get("close", [""])[0] != "1":
            time.sleep(20)

    def _send(self, status, data, content_type="application/json", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if data is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _write_raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def _big(self, size, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            self.wfile.flush()
            return
        sent = 0
        while sent < size:
            n = min(len(PATTERN), size - sent)
            block = PATTERN[:n]
            if chunked:
                self.wfile.write(b"%x\r\n" % n + block + b"\r\n")
            else:
                self.wfile.write(block)
            sent += n
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _raw(self, name):
        data, how = RAW_ANSWERS[name]
        if how == "bytes":
            for i in range(len(data)):
                self._write_raw(data[i:i + 1])
                time.sleep(0.001)
        else:
            self._write_raw(data)
        if how in ("close", "notify"):
            self.close_connection = True
        if how == "notify" and self.server.tls:
            # close_notify (Python's close sends none), then the client's
            # own awaited
            self.request.unwrap()
        elif how == "later":
            time.sleep(0.05)
            self._write_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")
        self.drop_next = name == "drop-next"

    def _drop(self, query):
        """Close the connection without (finishing) an answer."""
        self.close_connection = True
        if query.get("mode", ["rst"])[0] == "fin":
            return  # the server's normal close: shutdown, then close
        # An RST: SO_LINGER 0, and close before anyone sends a FIN (the
        # server would shut the socket down first).
        self.wfile.close()
        self.rfile.close()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()


class Server(serve.Server):
    request_queue_size = 256  # many connections arrive at once
    # Clients that hang up, refuse our certificate or time out are part of
    # the tests.
    quiet_errors = (OSError, ssl.SSLError, ValueError)

    def __init__(self, addr, tls_ctx):
        self.tls = tls_ctx is not None
        self.tls_ctx = tls_ctx
        self.counters = Counters()
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls_ctx is not None:
            sock = self.tls_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr


def main():
    ap = serve.arguments(__doc__)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--tls12", action="store_true")
    args = ap.parse_args()

    tls_ctx = None
    if args.tls:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.tls[0], args.tls[1])
        if args.tls12:
            tls_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        tls_ctx.set_alpn_protocols(["h2", "http/1.1"])  # as AWS endpoints

        def keep_sni(sock, name, ctx):
            sock.fanout_sni = name  # for the echo

        tls_ctx.sni_callback = keep_sni
    server = Server(("127.0.0.1", args.port), tls_ctx)
    serve.run(server, args, "chaos_server")


if __name__ == "__main__":
    main()
