"""The memcached plugin against real memcached servers (Debian's binary) on
loopback: three nodes, a small ElastiCache configuration endpoint of ours,
and the fanout binary (`fanout invoke`, and as a Lambda `bootstrap` behind
tests/servers/runtime_emulator.py to keep one process across invocations). Run by
meson with /usr/bin/python3 (standard library only)."""

import base64
import ctypes
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import harness as h  # noqa: E402
from cache_chaos import invoke_measured  # noqa: E402

KINESIS = "arn:aws:kinesis:us-east-1:123456789012:stream/example-stream"
DDB = ("arn:aws:dynamodb:us-east-1:123456789012:table/example-table/stream/"
       "2026-01-01T00:00:00.000")
DELAY = "arn:aws:kinesis:us-east-1:123456789012:stream/delay"


# ---- servers ----------------------------------------------------------------

def _die_with_parent():
    # memcached has no parent watch of its own: end it if the test dies
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Memcached:
    """One memcached on a loopback port (memcached -l 127.0.0.1 -p P -U 0 -m 16)."""

    def __init__(self, port=None, item_size=None):
        self.port = port or h.free_port()
        self.item_size = item_size
        self.proc = None
        self.start()

    def start(self):
        argv = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached will not run as root without -u
        if self.item_size:
            # -I below the default also needs a smaller slab_chunk_max
            argv += ["-I", str(self.item_size), "-o",
                     "slab_chunk_max=%d" % (self.item_size // 2)]
        # (the death signal follows the thread that started the process: only
        # from the main thread, which lives as long as the test)
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent if main else None)
        h.wait_port(self.port, proc=self.proc)

    def stop(self):
        # SIGKILL: a node going away at once (after SIGTERM memcached keeps
        # serving until its next clock tick, up to a second)
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        # wait until the port refuses connections
        end = time.time() + 5
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.02)
            except OSError:
                return

    @property
    def name(self):
        return "127.0.0.1:%d" % self.port

    def client(self):
        return Client(self.port)


class Client:
    """A tiny memcached text-protocol client, to read back from one node."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def close(self):
        self.s.close()

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, line):
        self.s.sendall(line + b"\r\n")
        return self._line()

    def get(self, key):
        if isinstance(key, str):
            key = key.encode()
        first = self.cmd(b"get " + key)
        if first == b"END":
            return None
        parts = first.split(b" ")
        assert parts[0] == b"VALUE", first
        n = int(parts[3])
        self._fill(n + 2)
        value, self.buf = self.buf[:n], self.buf[n + 2:]
        assert self._line() == b"END"
        return value

    def ttl(self, key):
        """Seconds left (meta get), -1 for none, None when absent."""
        line = self.cmd(b"mg " + key.encode() + b" t")
        if line.startswith(b"EN"):
            return None
        return int(line.split(b" t")[1].split(b" ")[0])

    def flush(self):
        assert self.cmd(b"flush_all") == b"OK"


class ConfigEndpoint:
    """A stand-in for an ElastiCache Memcached configuration endpoint:
    `config get cluster` answers the configuration as ElastiCache does
    (CONFIG cluster 0 <len>\\r\\n<version>\\n<host|ip|port> ...\\n\\r\\nEND\\r\\n).
    `configs` are (version, [node "host|ip|port"...]); each request takes the
    next one, the last one stays. With legacy=True it answers like an engine
    before 1.4.14: ERROR to `config get cluster`, the configuration as the
    value of `get AmazonElastiCache:cluster`."""

    def __init__(self, configs, legacy=False):
        self.configs = list(configs)
        self.legacy = legacy
        self.requests = []  # (monotonic time, command)
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.name = "127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _next(self):
        with self.lock:
            cfg = self.configs[0] if len(self.configs) == 1 else self.configs.pop(0)
        version, nodes = cfg
        return ("%d\n%s\n" % (version, " ".join(nodes))).encode()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        with conn:
            while True:
                while b"\r\n" not in buf:
                    try:
                        chunk = conn.recv(4096)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b"\r\n", 1)
                with self.lock:
                    self.requests.append((time.monotonic(), line.decode()))
                if line == b"config get cluster" and not self.legacy:
                    body = self._next()
                    conn.sendall(b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body))
                elif line == b"get AmazonElastiCache:cluster" and self.legacy:
                    body = self._next()
                    conn.sendall(b"VALUE AmazonElastiCache:cluster 0 %d\r\n%s\r\nEND\r\n"
                                 % (len(body), body))
                elif line.startswith(b"get "):
                    conn.sendall(b"END\r\n")
                else:
                    conn.sendall(b"ERROR\r\n")

    def config_requests(self):
        with self.lock:
            return [r for r in self.requests
                    if r[1] in ("config get cluster", "get AmazonElastiCache:cluster")]

    def stop(self):
        self.sock.close()


# ---- what a reader computes: libmemcached's weighted ketama ---------------

def _f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def ketama_ring(names):
    """The continuum MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED builds for servers
    "host:port" of weight 1 (libmemcached hosts.cc update_continuum)."""
    n = len(names)
    points = []
    for idx, name in enumerate(names):
        pct = _f32(_f32(1.0) / _f32(float(n)))
        per = int(_f32(_f32(_f32(_f32(pct * 160) / 4) * _f32(float(n))) + _f32(1e-10)) // 1) * 4
        host, port = name.rsplit(":", 1)
        label = host if port == "11211" else name
        for i in range(per // 4):
            d = hashlib.md5(("%s-%d" % (label, i)).encode()).digest()
            for a in range(4):
                points.append((int.from_bytes(d[4 * a:4 * a + 4], "little"), idx))
    points.sort()
    return points


def ketama_node(names, key):
    """The index in `names` of the node a key goes to."""
    if len(names) == 1:
        return 0
    if isinstance(key, str):
        key = key.encode()
    points = ketama_ring(names)
    hv = int.from_bytes(hashlib.md5(key).digest()[:4], "little")
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid][0] < hv:
            lo = mid + 1
        else:
            hi = mid
    return points[lo if lo < len(points) else 0][1]


def kinesis_event(records, arn=KINESIS, first_seq=1000):
    """records: (partition key, bytes); sequence numbers from first_seq."""
    out = []
    for i, (pk, data) in enumerate(records):
        out.append({"eventSource": "aws:kinesis", "eventSourceARN": arn,
                    "awsRegion": "us-east-1", "eventName": "aws:kinesis:record",
                    "kinesis": {"partitionKey": pk, "sequenceNumber": str(first_seq + i),
                                "data": base64.b64encode(data).decode()}})
    return {"Records": out}


def mc_mapping(id_, destination, source=KINESIS, **extra):
    return h.mapping(id_, "memcached", destination, source=source, **extra)


FAST_RETRY = {"FANOUT_RETRY_BASE_MS": "1", "FANOUT_RETRY_CAP_MS": "5"}


class MemcachedPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nodes = [Memcached() for _ in range(3)]

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()

    def setUp(self):
        self.tmp = h.TempDir()
        self.dir = self.tmp.path
        for n in self.nodes:
            if n.proc.poll() is not None:
                n.start()
            c = n.client()
            c.flush()
            c.close()

    def tearDown(self):
        self.tmp.cleanup()

    # ---- helpers ----

    @property
    def names(self):
        return [n.name for n in self.nodes]

    def invoke(self, mappings, event, env=None):
        e = dict(FAST_RETRY)
        e.update(env or {})
        return h.invoke(self.dir, mappings, event, env=e)

    def where(self, key, nodes=None):
        """The nodes (indexes) holding `key`, and the value found."""
        found, value = [], None
        for i, n in enumerate(nodes or self.nodes):
            c = n.client()
            v = c.get(key)
            c.close()
            if v is not None:
                found.append(i)
                value = v
        return found, value

    def run_lambda(self, events, mappings, watcher=None, env=None):
        """The fanout binary as a Lambda bootstrap: one process for all the
        events. `watcher(posts_so_far)` is called as invocations complete.
        Returns (CompletedProcess, the posts)."""
        evfile = os.path.join(self.dir, "events.json")
        out = os.path.join(self.dir, "api.jsonl")
        cfg = os.path.join(self.dir, "mappings.json")
        with open(evfile, "w") as f:
            json.dump([{"event": ev} for ev in events], f)
        with open(cfg, "w") as f:
            json.dump(mappings, f)
        emu = h.runtime_emulator(evfile, out)
        stop = threading.Event()

        def posts():
            if not os.path.exists(out):
                return []
            with open(out) as f:
                calls = [json.loads(line) for line in f if line.endswith("\n")]
            return [c for c in calls if c["kind"] in ("response", "error", "init_error")]

        def watch():
            seen = 0
            while not stop.is_set():
                p = posts()
                while len(p) > seen:
                    seen += 1
                    watcher(seen)
                time.sleep(0.01)

        t = threading.Thread(target=watch, daemon=True) if watcher else None
        try:
            port = emu.stdout.readline().decode().strip()
            e = dict(os.environ)
            for k in list(e):
                if k.startswith("AWS_"):
                    del e[k]
            # Never the real EC2 instance metadata service (the chain's last step).
            e["AWS_EC2_METADATA_DISABLED"] = "true"
            e.update({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:" + port, "FANOUT_CONFIG": cfg,
                      "FANOUT_PLUGIN_PATH": h.plugin_path(), "FANOUT_LOG_FORMAT": "text"})
            e.update(FAST_RETRY)
            e.update(env or {})
            if t:
                t.start()
            r = subprocess.run([h.FANOUT], env=e, capture_output=True, timeout=60)
        finally:
            stop.set()
            if t:
                t.join()
            emu.kill()
            emu.wait()
            emu.stdout.close()
        return r, posts()

    # ---- distribution ----

    def test_keys_spread_by_ketama_and_stay_put(self):
        keys = ["user-%d" % i for i in range(90)]
        for rnd in range(2):
            data = [("%s:%d" % (k, rnd)).encode() for k in keys]
            r, failed = self.invoke([mc_mapping("mc", ",".join(self.names))],
                                    kinesis_event(list(zip(keys, data))))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(failed, [])
            per_node = [0, 0, 0]
            for k, d in zip(keys, data):
                found, value = self.where(k)
                # on exactly one node, the one a libmemcached reader with
                # KETAMA_WEIGHTED computes, with the latest value
                self.assertEqual(found, [ketama_node(self.names, k)], k)
                self.assertEqual(value, d)
                per_node[found[0]] += 1
            self.assertTrue(all(c > 0 for c in per_node), per_node)
        # listing the nodes in another order moves nothing
        r, _ = self.invoke([mc_mapping("mc", ",".join(reversed(self.names)))],
                           kinesis_event([(k, b"again") for k in keys]))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        for k in keys:
            self.assertEqual(self.where(k), ([ketama_node(self.names, k)], b"again"))

    def test_binary_values_from_kpl(self):
        expected = {}
        corrupt = None
        with open(os.path.join(h.DATA, "events", "kpl-aggregated.expected.jsonl")) as f:
            for line in f:
                obj = json.loads(line)
                if "corrupt" in obj:
                    corrupt = obj["corrupt"]
                else:
                    expected[obj["key"]] = base64.b64decode(obj["dataB64"])  # last wins
        r, failed = self.invoke([mc_mapping("kpl", ",".join(self.names), deaggregate=True)],
                                h.sample_event("kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(failed, [corrupt])
        self.assertTrue(any(b"\0" in v or b"\xff" in v for v in expected.values()))
        for key, value in expected.items():
            found, got = self.where(key)
            self.assertEqual(found, [ketama_node(self.names, key)], key)
            # binary data intact, and of a key's several user records the last
            self.assertEqual(got, value, key)
        # protocol bytes in a value are just bytes
        tricky = b"a\r\nEND\r\nset x 0 0 1\r\n\0\xff"
        r, _ = self.invoke([mc_mapping("mc", ",".join(self.names))],
                           kinesis_event([("tricky", tricky)]))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.where("tricky")[1], tricky)
        self.assertEqual(self.where("x")[0], [])

    def test_dynamodb_sample(self):
        r, failed = self.invoke([mc_mapping("ddb", ",".join(self.names), source=DDB,
                                            convertDDB=True)],
                                h.sample_event("dynamodb.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        found, value = self.where("h1002-0|0")
        self.assertEqual(found, [ketama_node(self.names, "h1002-0|0")])
        self.assertIn(b'"big":12345678901234567890123456789.5', value)
        self.assertEqual(json.loads(value)["tags"], ["a", "b"])
        # REMOVE records have no NewImage: stored as {} by default ...
        self.assertEqual(self.where("h1002-2|2")[1], b"{}")
        # ... or, with deleteOnRemove, the key is deleted
        r, _ = self.invoke([mc_mapping("ddb", ",".join(self.names), source=DDB,
                                       convertDDB=True, deleteOnRemove=True)],
                           h.sample_event("dynamodb.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.where("h1002-2|2"), ([], None))
        self.assertEqual(self.where("h1002-5|5"), ([], None))
        self.assertIsNotNone(self.where("h1002-4|4")[1])

    def test_expiration(self):
        node = self.nodes[0]
        # 2 s: memcached's clock ticks once a second, so an item given 1 s
        # can be gone at once (seen under ASan, where fanout exits slowly)
        r, _ = self.invoke([mc_mapping("short", node.name, expirationSeconds=2,
                                       autoDiscovery=False),
                            mc_mapping("long", node.name, keyPrefix="long:",
                                       expirationSeconds=40 * 86400, autoDiscovery=False),
                            mc_mapping("none", node.name, keyPrefix="none:",
                                       autoDiscovery=False)],
                           kinesis_event([("k", b"v")]))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        c = node.client()
        self.assertEqual(c.get("k"), b"v")
        # over 30 days memcached reads an absolute time: sent as now + n
        ttl = c.ttl("long:k")
        self.assertTrue(40 * 86400 - 10 <= ttl <= 40 * 86400 + 1, ttl)
        self.assertEqual(c.ttl("none:k"), -1)
        time.sleep(3.1)
        self.assertIsNone(c.get("k"))
        self.assertEqual(c.get("none:k"), b"v")
        c.close()

    # ---- failures ----

    def test_node_down_its_records_fail_the_rest_land(self):
        keys = ["acct-%d" % i for i in range(60)]
        down = 1
        self.nodes[down].stop()
        try:
            r, failed = self.invoke([mc_mapping("mc", ",".join(self.names))],
                                    kinesis_event([(k, k.encode()) for k in keys]))
        finally:
            self.nodes[down].start()
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        owner = {k: ketama_node(self.names, k) for k in keys}
        lost = [k for k in keys if owner[k] == down]
        self.assertTrue(lost)
        # exactly the down node's records are reported (no redistribution,
        # no silent loss), after the engine's retries
        self.assertEqual(sorted(failed), sorted(str(1000 + keys.index(k)) for k in lost))
        self.assertIn("attempt 2 of 4", err)
        self.assertIn("CONNECTION_FAILURE", err)
        self.assertIn("Connection refused", err)
        self.assertIn("cannot connect to %s: Connection refused" % self.names[down], err)
        for k in keys:
            found, value = self.where(k)
            if owner[k] == down:
                self.assertEqual(found, [])
            else:
                self.assertEqual((found, value), ([owner[k]], k.encode()))

    def test_node_restart_and_outage_in_one_process(self):
        """Connections kept across invocations: a node restarted between
        two invocations costs nothing (one reconnect); a node that is down
        fails only its records; once back it takes writes again."""
        n2 = self.nodes[1]

        def watcher(posts):
            if posts == 1:      # after E1, while D sleeps
                n2.stop()
                n2.start()
            elif posts == 3:    # after E2
                n2.stop()
            elif posts == 5:    # after E3
                n2.start()

        delay = kinesis_event([("d", b"sleep:700:")], arn=DELAY)
        batch = [kinesis_event([("%s-%d" % (tag, i), tag.encode()) for i in range(30)])
                 for tag in ("e1", "e2", "e3", "e4")]
        r, posts = self.run_lambda(
            [batch[0], delay, batch[1], delay, batch[2], delay, batch[3]],
            [mc_mapping("mc", ",".join(self.names)),
             h.mapping("delay", "flaky", os.path.join(self.dir, "flaky.log"), source=DELAY)],
            watcher=watcher, env={"FANOUT_LOG_LEVEL": "debug"})
        log = r.stderr.decode()
        kinds = [p["kind"] for p in posts]
        self.assertEqual(kinds, ["response", "response", "response", "response", "error",
                                 "response", "response"], log)
        self.assertIn("%s: the kept connection has unread bytes or was closed; reconnecting"
                      % self.names[1], log)
        self.assertEqual(log.count("opened memcached instance"), 1, log)
        owner = {}
        for tag in ("e1", "e2", "e3", "e4"):
            for i in range(30):
                k = "%s-%d" % (tag, i)
                owner[k] = ketama_node(self.names, k)
                found, _ = self.where(k)
                if owner[k] == 1 and tag != "e4":
                    # n2 lost e1 and e2 when it was restarted (their posts
                    # said all delivered), and e3 was reported failed
                    self.assertEqual(found, [], k)
                else:
                    self.assertEqual(found, [owner[k]], k)
        self.assertIn("%d of 30 records" % sum(1 for i in range(30) if owner["e3-%d" % i] == 1),
                      json.loads(posts[4]["body"])["errorMessage"])

    def test_oversize_items(self):
        small = Memcached(item_size=2048)
        try:
            big = os.urandom(1536 * 1024)
            r, failed = self.invoke(
                [mc_mapping("default", small.name, autoDiscovery=False),
                 mc_mapping("limited", small.name, keyPrefix="l:", maxItemBytes=2048,
                            autoDiscovery=False)],
                kinesis_event([("ok", b"x" * 1000), ("mid", b"y" * 4000), ("big", big)]))
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(sorted(failed), ["1001", "1002"])
            # the engine refuses what is over the declared limit, with size and limit
            self.assertIn("record of %d bytes (data %d + partition key 3) is larger than "
                          "the destination's limit of %d bytes per record"
                          % (len(big) + 3, len(big), 1024 * 1024 - 64), err)
            self.assertIn("record of 4003 bytes (data 4000 + partition key 3) is larger than "
                          "the destination's limit of %d bytes" % (2048 - 64 - 2), err)
            # the server refuses what its -I does not allow: permanent, its words
            self.assertIn("SERVER_ERROR: %s refused the item: \"SERVER_ERROR object too "
                          "large for cache\" (key 3 + value 4000 bytes" % small.name, err)
            self.assertIn("(1 attempt)", err)
            c = small.client()
            self.assertEqual(c.get("ok"), b"x" * 1000)
            self.assertEqual(c.get("l:ok"), b"x" * 1000)
            self.assertIsNone(c.get("mid"))
            c.close()
        finally:
            small.stop()

    def test_long_and_bad_keys(self):
        long_key = "k" * 251
        exact = "e" * 250
        recs = [(long_key, b"long"), ("has space", b"space"), ("tab\there", b"tab"),
                (exact, b"exact"), ("ключ-ok", b"utf8")]
        r, failed = self.invoke([mc_mapping("mc", ",".join(self.names))], kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])
        self.assertIn("InvalidKey: key \"%s...\" is not a memcached key: it is 251 bytes, "
                      "more than memcached's 250" % ("k" * 40), err)
        self.assertIn("key \"has space\" is not a memcached key: it has a space at byte 3",
                      err)
        self.assertIn("key \"tab\\x09here\" is not a memcached key: it has the control "
                      "character 0x09 at byte 3", err)
        self.assertIn("hashLongKeys", err)
        self.assertIn("(1 attempt)", err)
        self.assertEqual(self.where(exact)[1], b"exact")
        self.assertEqual(self.where("ключ-ok")[1], b"utf8")
        # hashLongKeys: stored under sha256:<hex of the key>, where a reader finds it
        r, failed = self.invoke([mc_mapping("mc", ",".join(self.names), hashLongKeys=True,
                                            keyPrefix="app:")], kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        stored = {key: "app:sha256:" + hashlib.sha256(key.encode()).hexdigest()
                  for key, _ in recs}
        stored["ключ-ok"] = "app:ключ-ok"  # fits: kept as is
        # (250 bytes + "app:" no longer fits: hashed too)
        for key, value in recs:
            found, got = self.where(stored[key])
            self.assertEqual((found, got), ([ketama_node(self.names, stored[key])], value), key)

    # ---- configuration ----

    def test_wrong_destinations_and_fields(self):
        cases = [
            ("", {}, "field \"destination\": must not be empty"),
            ("cache.local", {}, "\"cache.local\" has no port: expected host:port"),
            ("cache.local:0", {}, "the port must be a number from 1 to 65535"),
            ("cache.local:99999", {}, "the port must be a number from 1 to 65535"),
            ("cache.local:11211,", {}, "node 2 of the list is empty"),
            ("memcached://cache.local:11211", {}, "is a URL"),
            ("a b:11211", {}, "the host is not a DNS name or IP address"),
            ("[::1:11211", {}, "expected [IPv6 address]:port"),
            ("h:1,h:1", {}, "node h:1 is listed twice"),
            ("h:11211", {"keyPrefix": "a b"}, "keyPrefix: it has a space"),
            ("h:11211", {"keyPrefix": "p" * 200}, "keyPrefix is 200 bytes"),
            ("h:11211", {"maxItemBytes": 10}, "maxItemBytes"),
            ("h:11211", {"expirationSeconds": -1}, "expirationSeconds"),
            ("h:11211", {"ttl": 5}, "ttl"),
        ]
        for dest, extra, want in cases:
            cfg = os.path.join(self.dir, "m.json")
            with open(cfg, "w") as f:
                json.dump([mc_mapping("bad", dest, **extra)], f)
            r = h.run_fanout(["validate", "--config", cfg])
            out = r.stdout.decode() + r.stderr.decode()
            self.assertNotEqual(r.returncode, 0, (dest, extra, out))
            self.assertIn(want, out, (dest, extra))
            if not extra and dest:
                self.assertIn("expected e.g. my-cache.abc123.cfg.use1.cache.amazonaws.com:11211",
                              out)
        # aws-lambda-fanout's CLI wrote these for every type; it ignored them here,
        # and so does fanout, with a warning naming each
        for extra in ({"role": "arn:aws:iam::123456789012:role/r"}, {"region": "eu-west-1"},
                      {"collapse": "JSON"}):
            cfg = os.path.join(self.dir, "m.json")
            with open(cfg, "w") as f:
                json.dump([mc_mapping("legacy", "h:11211", **extra)], f)
            r = h.run_fanout(["validate", "--config", cfg])
            out = r.stdout.decode() + r.stderr.decode()
            self.assertEqual(r.returncode, 0, (extra, out))
            self.assertIn('field "%s"' % next(iter(extra)), out)
            self.assertIn('ignored for type "memcached", as aws-lambda-fanout ignored it', out)
        good = ["cache.local:11211", "10.0.0.1:11211,10.0.0.2:11212", "[::1]:11211",
                "my-cache.abc123.cfg.use1.cache.amazonaws.com:11211"]
        cfg = os.path.join(self.dir, "m.json")
        with open(cfg, "w") as f:
            json.dump([mc_mapping("ok%d" % i, d) for i, d in enumerate(good)], f)
        r = h.run_fanout(["validate", "--config", cfg])
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

    def test_unreachable_endpoint(self):
        port = h.free_port()
        r, failed = self.invoke([mc_mapping("mc", "127.0.0.1:%d" % port, timeoutMs=300)],
                                kinesis_event([("a", b"1"), ("b", b"2")]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        self.assertIn("DiscoveryFailed: cluster discovery failed: cannot connect to "
                      "127.0.0.1:%d: Connection refused" % port, err)
        self.assertIn("(gave up after 4 attempts)", err)

    # ---- auto-discovery ----

    def test_plain_memcached_fallback(self):
        node = self.nodes[2]
        r, failed = self.invoke([mc_mapping("mc", node.name)],
                                kinesis_event([("k%d" % i, b"v") for i in range(10)]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertIn("%s answers neither \"config get cluster\" nor \"get "
                      "AmazonElastiCache:cluster\": a plain memcached, not an ElastiCache "
                      "configuration endpoint; using it as the only node" % node.name, err)
        for i in range(10):
            self.assertEqual(self.where("k%d" % i), ([2], b"v"))

    def test_legacy_discovery_command(self):
        cfg = ConfigEndpoint([(7, ["|127.0.0.1|%d" % n.port for n in self.nodes[:2]])],
                             legacy=True)
        try:
            keys = ["old-%d" % i for i in range(30)]
            r, _ = self.invoke([mc_mapping("mc", cfg.name)],
                               kinesis_event([(k, b"v") for k in keys]))
        finally:
            cfg.stop()
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual([c for _, c in cfg.requests],
                         ["config get cluster", "get AmazonElastiCache:cluster"])
        self.assertIn("cluster configuration version 7 from %s: 2 node(s): %s, %s"
                      % (cfg.name, self.names[0], self.names[1]), err)
        names = self.names[:2]
        for k in keys:
            self.assertEqual(self.where(k)[0], [ketama_node(names, k)])

    def test_discovery_and_refresh_in_one_process(self):
        n = self.nodes
        node = "127.0.0.1|127.0.0.1|%d"
        cfg = ConfigEndpoint([
            (1, [node % n[0].port, node % n[1].port]),
            (2, [node % x.port for x in n]),
            (2, [node % n[0].port]),  # same version: not applied
            (3, [node % n[1].port, node % n[2].port]),
        ])
        delay = kinesis_event([("d", b"sleep:1100:")], arn=DELAY)
        tags = ["v1a", "v1b", "v2a", "v2b", "v3"]
        ev = {t: kinesis_event([("%s-%d" % (t, i), t.encode()) for i in range(40)])
              for t in tags}
        try:
            r, posts = self.run_lambda(
                [ev["v1a"], ev["v1b"], delay, ev["v2a"], delay, ev["v2b"], delay, ev["v3"]],
                [mc_mapping("mc", cfg.name, discoveryIntervalSeconds=1),
                 h.mapping("delay", "flaky", os.path.join(self.dir, "flaky.log"),
                           source=DELAY)])
        finally:
            cfg.stop()
        log = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["response"] * 8, log)
        # asked once at the first send, then at the first send after each
        # interval: not for v1b, which came right after v1a
        self.assertEqual(len(cfg.config_requests()), 4, cfg.requests)
        self.assertIn("cluster configuration version 1 from %s: 2 node(s)" % cfg.name, log)
        self.assertIn("cluster configuration version 2 (was 1) from %s: 3 node(s)" % cfg.name,
                      log)
        self.assertIn("cluster configuration version 3 (was 2) from %s: 2 node(s): %s, %s"
                      % (cfg.name, n[1].name, n[2].name), log)
        self.assertNotIn("(was 2) from %s: 1 node" % cfg.name, log)
        lists = {"v1a": n[:2], "v1b": n[:2], "v2a": n, "v2b": n, "v3": n[1:]}
        for t in tags:
            names = [x.name for x in lists[t]]
            spread = set()
            for i in range(40):
                k = "%s-%d" % (t, i)
                found, value = self.where(k)
                want = self.nodes.index(lists[t][ketama_node(names, k)])
                self.assertEqual((found, value), ([want], t.encode()), k)
                spread.add(want)
            self.assertEqual(len(spread), len(names), t)


class MisbehavingServer(h.CacheChaosCase):
    """tests/servers/cache_chaos.py plays a memcached node that answers the
    plugin's commands wrongly. In every case the process ends (no abort, in
    bounded time and memory), the records the server did not confirm with
    their own STORED are reported failed (exit 1) or were retried to
    success, and none is counted twice."""

    KIND = "memcached"
    ENV = FAST_RETRY

    def mapping(self, srv, **opts):
        return mc_mapping("mc", srv.address, autoDiscovery=False, timeoutMs=500, **opts)

    def event(self):
        return kinesis_event([(k, k.encode()) for k in self.KEYS])

    # ---- replies a set can get that do not confirm it ----

    def test_documented_refusals_are_not_success(self):
        for reply, code, attempts in (("NOT_FOUND", "NOT_FOUND", 4),
                                      ("NOT_STORED", "NOT_STORED", 4),
                                      ("EXISTS", "EXISTS", 4),
                                      ("ERROR", "ERROR", 4),
                                      ("SERVER_ERROR out of memory storing object",
                                       "SERVER_ERROR", 4),
                                      ("CLIENT_ERROR bad data chunk", "CLIENT_ERROR", 1)):
            with self.subTest(reply=reply):
                srv = self.chaos("reply:" + reply)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, code,
                                     "(1 attempt)" if attempts == 1
                                     else "(gave up after %d attempts)" % attempts)
                if reply in ("NOT_FOUND", "NOT_STORED", "EXISTS"):
                    self.assertIn('answered "%s" to the set of key "k0": not stored (only '
                                  'STORED confirms a set)' % reply, log)

    def test_replies_a_set_cannot_get_end_nothing_but_the_exchange(self):
        """libmemcached asserted on these (abort): now each is a protocol
        error, the connection is dropped and the records retried, then
        reported."""
        for reply in ("OK", "END", "DELETED", "42", "VALUE k0 0 1", "TOUCHED", "MN",
                      "VERSION 1.6", "STORED extra words", "stored"):
            with self.subTest(reply=reply):
                srv = self.chaos("reply:" + reply)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, "PROTOCOL_ERROR",
                                     "which that command cannot get",
                                     "no reply of the exchange is trusted")
                self.assertGreater(srv.connections, 1)  # dropped, not reused

    # ---- replies not matched to the commands ----

    def test_extra_replies(self):
        srv = self.chaos("extra")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "PROTOCOL_ERROR", "out of step")
        # the first connection only: the resend on a new one succeeds, once
        srv = self.chaos("extra", bad=1)
        rc, log, failed = self.run_one(srv)
        self.assertAllDelivered(rc, log, failed, srv)
        self.assertIn("PROTOCOL_ERROR", log)
        self.assertEqual(srv.connections, 2)

    def test_reply_before_any_command(self):
        srv = self.chaos("early")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "PROTOCOL_ERROR")
        srv = self.chaos("early", bad=1)
        rc, log, failed = self.run_one(srv)
        self.assertAllDelivered(rc, log, failed, srv)

    def run_two_invocations(self, srv):
        """Two events in one process (the Lambda loop): the second batch
        goes over the connection the first one used."""
        # (a 300 ms invocation of another target in between, so that a late
        # reply has arrived before the second batch)
        ev = [kinesis_event([("a%d" % i, b"1") for i in range(3)]),
              kinesis_event([("d", b"sleep:300:")], arn=DELAY),
              kinesis_event([("b%d" % i, b"2") for i in range(3)])]
        maps = [mc_mapping("mc", srv.address, autoDiscovery=False, timeoutMs=500),
                h.mapping("delay", "flaky", os.path.join(self.dir, "flaky.log"), source=DELAY)]
        sub = h.TempDir()
        self.addCleanup(sub.cleanup)
        me = type("Run", (), {"dir": sub.path})()
        r, posts = MemcachedPlugin.run_lambda(me, ev, maps, env={"FANOUT_LOG_LEVEL": "debug"})
        log = r.stderr.decode()
        self.assertGreaterEqual(r.returncode, 0, log)
        self.assertEqual([p["kind"] for p in posts], ["response"] * 3, log)
        for p in posts:
            self.assertEqual(json.loads(p["body"]), {"batchItemFailures": []}, log)
        for k in ["a%d" % i for i in range(3)] + ["b%d" % i for i in range(3)]:
            self.assertIn(k.encode(), srv.stored)
        return log

    def test_reply_left_over_from_the_previous_batch(self):
        # held back and sent ahead of the next batch's replies: the closing
        # version's reply is then a STORED, and the exchange is resent
        srv = self.chaos("stale")
        log = self.run_two_invocations(srv)
        self.assertIn("where the reply to the closing \"version\" (VERSION ...) was due", log)
        self.assertEqual(srv.connections, 2, log)
        # sent while the connection was idle: seen before it is reused
        srv = self.chaos("leftover")
        log = self.run_two_invocations(srv)
        self.assertIn("the kept connection has unread bytes or was closed; reconnecting", log)
        self.assertEqual(srv.connections, 2, log)

    # ---- bounds ----

    def test_endless_reply_line_is_cut_at_its_bound(self):
        srv = self.chaos("huge")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "PROTOCOL_ERROR", "a line over 1024 bytes")

    def test_slow_drip_ends_at_the_exchange_deadline(self):
        # a byte every 150 ms: never 500 ms (timeoutMs) without progress,
        # but the exchange has timeoutMs + 1 ms per 10 kB in all
        srv = self.chaos("drip")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "TIMEOUT", "the exchange did not end in time")

    # ---- broken connections and noise ----

    def test_broken_and_noisy_replies(self):
        for behaviour, phrase in (("reset", "Connection reset by peer"),
                                  ("halffin", "closed the connection after 0 of the 6 "
                                              "replies (in the middle of one)"),
                                  ("garbage", "PROTOCOL_ERROR"),
                                  ("empty", "(an empty line)"),
                                  ("silent", "nothing received for 500 ms (timeoutMs) after 0 of the 6 "
                                             "replies")):
            with self.subTest(behaviour=behaviour):
                srv = self.chaos(behaviour)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, phrase)
                srv = self.chaos(behaviour, bad=1)
                rc, log, failed = self.run_one(srv)
                self.assertAllDelivered(rc, log, failed, srv)

    def test_replies_before_the_command_was_sent(self):
        """A 16 MiB value takes several writes; the server answers STORED and
        VERSION at its first bytes. Those replies were not caused by the
        command: protocol error, then resent on a new connection."""
        srv = self.chaos("ahead", bad=1)
        m = mc_mapping("mc", srv.address, autoDiscovery=False, timeoutMs=2000,
                       maxItemBytes=64 << 20)
        big = b"v" * (16 << 20)
        rc, log, failed, _, _ = invoke_measured(h, self.dir, [m], kinesis_event([("big", big)]),
                                                env=FAST_RETRY)
        self.assertEqual(rc, 0, log)
        self.assertIn("before it was sent entirely", log)
        self.assertEqual(srv.stored.get(b"big"), big)
        self.assertEqual(srv.connections, 2)

    def test_replies_before_a_reset_prove_nothing(self):
        """Two STOREDs, then a reset: the exchange never got its closing
        `version` reply, so those two STOREDs are not proof (a stray reply
        read before a break looks just the same): all five records are
        reported retryable and sent again, on a new connection. The server
        handles 3 sets on the first connection (it resets at the third) and
        5 on the second; 5 delivered."""
        srv = self.chaos("resetafter:2", bad=1)
        rc, log, failed = self.run_one(srv)
        self.assertAllDelivered(rc, log, failed, srv)
        self.assertEqual(srv.data_commands, 8, log)
        self.assertIn("Connection reset by peer", log)
        self.assertIn("5 record(s) of this batch for it not confirmed", log)
        self.assertIn("after 2 of the 6 replies", log)

    def test_discovery_replies_bounded_and_checked(self):
        """The configuration endpoint answers `config get cluster` with a
        CONFIG header and bytes without end, or with a body that is no node
        list: discovery fails (bounded at 64 KiB and timeoutMs), the records
        are reported retryable then failed, nothing crashes."""
        for behaviour, phrase in (("confighuge", "is not understood"),
                                  ("configjunk", "is not host|ip|port")):
            with self.subTest(behaviour=behaviour):
                srv = self.chaos(behaviour)
                m = mc_mapping("mc", srv.address, timeoutMs=500)
                ev = kinesis_event([(k, k.encode()) for k in self.KEYS])
                rc, log, failed, rss, took = invoke_measured(h, self.dir, [m], ev,
                                                             env=FAST_RETRY)
                self.assertGreaterEqual(rc, 0, log)
                self.assertLess(rss, self.MAX_RSS_KIB, log)
                self.assertLess(took, self.MAX_SECONDS, log)
                self.assertAllFailed(rc, log, failed, "DiscoveryFailed", phrase)

    def test_delete_replies(self):
        """deleteOnRemove: DELETED and NOT_FOUND confirm a delete; STORED
        does not."""
        ev = {"Records": [{"eventSource": "aws:dynamodb", "eventSourceARN": DDB,
                           "eventName": "REMOVE", "awsRegion": "us-east-1",
                           "dynamodb": {"Keys": {"pk": {"S": "gone"}},
                                        "SequenceNumber": "500",
                                        "StreamViewType": "NEW_AND_OLD_IMAGES"}}]}
        for reply, rc_want in (("DELETED", 0), ("NOT_FOUND", 0), ("STORED", 1)):
            with self.subTest(reply=reply):
                srv = self.chaos("reply:" + reply)
                m = mc_mapping("mc", srv.address, source=DDB, autoDiscovery=False,
                               timeoutMs=500, deleteOnRemove=True)
                rc, log, failed, _, _ = invoke_measured(h, self.dir, [m], ev, env=FAST_RETRY)
                self.assertEqual(rc, rc_want, log)
                if rc_want:
                    self.assertEqual(failed, ["500"], log)
                    self.assertIn("PROTOCOL_ERROR", log)

    def test_resent_delete_never_lands_after_a_later_set(self):
        """deleteOnRemove: REMOVE k then INSERT k in one batch; the delete
        gets SERVER_ERROR out of memory once (retryable). The later records
        for that node are resent after it, in order, so k ends set, as in
        the table."""
        def rec(name, pk, seq, image=None):
            d = {"Keys": {"pk": {"S": pk}}, "SequenceNumber": str(seq),
                 "StreamViewType": "NEW_AND_OLD_IMAGES"}
            if image is not None:
                d["NewImage"] = {"pk": {"S": pk}, "v": {"S": image}}
            return {"eventSource": "aws:dynamodb", "eventSourceARN": DDB, "eventName": name,
                    "awsRegion": "us-east-1", "dynamodb": d}
        ev = {"Records": [rec("REMOVE", "k", 600), rec("INSERT", "k", 601, "new"),
                          rec("INSERT", "j", 602, "j")]}
        srv = self.chaos("oomat:0")
        srv.stored[b"k"] = b"old"
        m = mc_mapping("mc", srv.address, source=DDB, autoDiscovery=False, timeoutMs=500,
                       deleteOnRemove=True, convertDDB=True)
        rc, log, failed, _, _ = invoke_measured(h, self.dir, [m], ev, env=FAST_RETRY)
        self.assertEqual(rc, 0, log)
        self.assertEqual(failed, [], log)
        self.assertIn("3 of 3 messages to memcached", log)  # all later on the node
        self.assertEqual(json.loads(srv.stored[b"k"]), {"pk": "k", "v": "new"})
        self.assertEqual(json.loads(srv.stored[b"j"]), {"pk": "j", "v": "j"})
        self.assertEqual(srv.data_commands, 6)  # delete (refused), set, set, then again


if __name__ == "__main__":
    unittest.main(verbosity=2)
