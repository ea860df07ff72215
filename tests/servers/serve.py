"""What every loopback test server in tests/servers shares: the options
--port (0: any free port), --parent-pid and --max-lifetime, the server
class, and the run: bind 127.0.0.1, print the port as the first line on
stdout (the tests and tests/unit/helpers read it), a watchdog thread that
ends the process when its parent is gone or its lifetime is over, serve
until killed (SIGTERM) or interrupted (SIGINT).

    ap = serve.arguments(__doc__)
    ap.add_argument(...)                 # the server's own options
    args = ap.parse_args()
    server = serve.Server(("127.0.0.1", args.port), Handler)
    serve.run(server, args, "my_server")
"""

import argparse
import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    """Threaded, reusing its address. Errors of the classes in
    quiet_errors (clients that hang up on purpose in the tests) are not
    printed."""
    daemon_threads = True
    allow_reuse_address = True
    quiet_errors = ()

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], self.quiet_errors):
            return
        super().handle_error(request, client_address)


def read_body(handler):
    """The body of the request `handler` (a BaseHTTPRequestHandler) is
    reading: Content-Length bytes, or the chunks of a chunked body (its
    trailers skipped). Raises ValueError or OSError on a malformed one."""
    rfile = handler.rfile
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size_line = rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(rfile.read(size))
            rfile.readline(65537)
    n = int(handler.headers.get("Content-Length") or 0)
    return rfile.read(n) if n > 0 else b""


def arguments(doc, port=True):
    """A parser described by the first line of `doc`, with --port (unless
    port is False), --parent-pid and --max-lifetime."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    if port:
        ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-lifetime", type=float, default=0)
    ap.add_argument("--parent-pid", type=int, default=0)
    return ap


def reparented(pid):
    """True once this process's parent is no longer `pid`."""
    return os.getppid() != pid


def process_gone(pid):
    """True once `pid` has exited (or is a zombie); for a --parent-pid that
    is not this process's parent."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return False


def watchdog(args, name, parent_gone=reparented, parent_status=2):
    """Exit with parent_status when parent_gone(args.parent_pid), with 3
    (saying so on stderr when `name` is given) after args.max_lifetime s."""
    start = time.monotonic()
    while True:
        time.sleep(0.2)
        if args.parent_pid and parent_gone(args.parent_pid):
            os._exit(parent_status)
        if args.max_lifetime and time.monotonic() - start > args.max_lifetime:
            if name:
                sys.stderr.write("%s: --max-lifetime reached\n" % name)
            os._exit(3)


def run(server, args, name, parent_gone=reparented, parent_status=2):
    """Start the watchdog (when --parent-pid or --max-lifetime is given),
    print the port, serve until killed."""
    if args.max_lifetime or args.parent_pid:
        threading.Thread(target=watchdog, args=(args, name, parent_gone, parent_status),
                         daemon=True).start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
