"""Integration tests of the redis plugin against real redis-server processes
(Debian's, 7.0, built with TLS) started on loopback ports by the tests: plain,
AUTH and ACL users, TLS with a CA and certificates made here with the openssl
binary, a replica, a two-node cluster, a server killed or restarted, and
small loopback helpers (a proxy that drops a connection mid-pipeline, a
listener that never answers). Values are read back with a tiny RESP client.
Run by meson with /usr/bin/python3 (standard library only)."""

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import harness  # noqa: E402
from cache_chaos import invoke_measured  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
PASSWORD = "S3cret-Token-For-Fanout-Tests"  # 16-128 printable, as ElastiCache wants
WRONG_PASSWORD = "Not-The-Right-Token-0000"
FAST = {"FANOUT_RETRY_BASE_MS": "1", "FANOUT_RETRY_CAP_MS": "20"}


# ---- a tiny RESP client ------------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    """Just enough of RESP2 to read back what fanout wrote."""

    def __init__(self, port, host="127.0.0.1", tls_ca=None, server_name="localhost",
                 password=None, user=None):
        s = socket.create_connection((host, port), timeout=10)
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            s = ctx.wrap_socket(s, server_hostname=server_name)
        self.sock = s
        self.buf = b""
        if password:
            self.cmd(*(["AUTH"] + ([user] if user else []) + [password]))

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError("bad reply %r" % line)

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def cmd(self, *args):
        self.send(*args)
        return self._reply()

    def get(self, key):
        return self.cmd("GET", key)


# ---- servers ------------------------------------------------------------------

class RedisServer:
    """A redis-server on a free loopback port, configured on the command line
    (no config file); restart() brings it back on the same port."""

    def __init__(self, tmpdir, *extra, tls=None, name="redis", port=None):
        self.tmpdir = tmpdir
        self.port = port or harness.free_port()
        self.name = "%s-%d" % (name, self.port)
        self.extra = list(extra)
        self.tls = tls  # (cert, key, ca) for a TLS-only server
        self.proc = None
        self.start()

    def argv(self):
        a = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmpdir, "--logfile", os.path.join(self.tmpdir, self.name + ".log"),
             "--daemonize", "no"]
        if self.tls:
            cert, key, ca = self.tls
            a += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert,
                  "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        else:
            a += ["--port", str(self.port)]
        return a + self.extra

    def start(self):
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        harness.wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc:
            harness.stop_process(self.proc, timeout=10)

    def restart(self):
        self.stop()
        self.start()

    def client(self, **kw):
        return Resp(self.port, **kw)


class DroppingProxy:
    """Forwards to a server; on the first connection only, passes `limit`
    bytes of replies back and then closes both sides (replies lost
    mid-pipeline). Later connections are forwarded untouched."""

    def __init__(self, target_port, limit):
        self.target = target_port
        self.limit = limit
        self.conns = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns += 1
            s = socket.create_connection(("127.0.0.1", self.target))
            limit = self.limit if self.conns == 1 else None
            threading.Thread(target=self._pump, args=(c, s, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, limit), daemon=True).start()

    @staticmethod
    def _pump(src, dst, limit):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[:limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.lsock.close()


def cluster_port():
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = harness.free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def make_certs(d):
    """A CA and a server certificate for localhost, redis.test, 127.0.0.1."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=fanout test CA", "-days", "2")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,DNS:redis.test,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return (os.path.join(d, "server.crt"), os.path.join(d, "server.key"),
            os.path.join(d, "ca.crt"))


def redis_map(dest, id_="r", source=harness.KINESIS_SOURCE, **extra):
    return harness.mapping(id_, "redis", dest, source=source, **extra)


def load_event(name):
    with open(harness.sample_event(name), encoding="utf-8") as f:
        return json.load(f)


def ddb_value(v):
    """A plain value as DynamoDB JSON (the stream's own format)."""
    if isinstance(v, bool):
        return {"BOOL": v}
    if v is None:
        return {"NULL": True}
    if isinstance(v, (int, float)):
        return {"N": str(v)}
    if isinstance(v, str):
        return {"S": v}
    if isinstance(v, list):
        return {"L": [ddb_value(x) for x in v]}
    return {"M": {k: ddb_value(x) for k, x in v.items()}}


class DdbTable:
    """A DynamoDB table (hash key "pk", range key "sk") whose changes come
    out as a DynamoDB Streams event shaped like tests/data/events/
    dynamodb.json (NEW_AND_OLD_IMAGES): INSERT, MODIFY and REMOVE records,
    sequence numbers counting up across events. `items` is what the table
    holds after the changes, keyed as fanout keys DynamoDB records
    ("pk|sk")."""

    def __init__(self, arn=harness.DDB_SOURCE):
        self.arn = arn
        self.items = {}
        self.seq = 1000

    def event(self, changes):
        """changes: (eventName, pk, sk, new image without the keys, or None)."""
        records = []
        for name, pk, sk, attrs in changes:
            key = "%s|%d" % (pk, sk)
            old = self.items.get(key)
            d = {"ApproximateCreationDateTime": 1767225600,
                 "Keys": {"pk": {"S": pk}, "sk": {"N": str(sk)}},
                 "SequenceNumber": str(self.seq), "SizeBytes": 26,
                 "StreamViewType": "NEW_AND_OLD_IMAGES"}
            if name == "REMOVE":
                self.items.pop(key, None)
            else:
                new = dict(pk=pk, sk=sk, **attrs)
                d["NewImage"] = {k: ddb_value(v) for k, v in new.items()}
                self.items[key] = new
            if old is not None:
                d["OldImage"] = {k: ddb_value(v) for k, v in old.items()}
            records.append({"eventID": "e%d" % self.seq, "eventName": name,
                            "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                            "awsRegion": harness.REGION, "eventSourceARN": self.arn,
                            "dynamodb": d})
            self.seq += 1
        return {"Records": records}


class RedisPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp_class = tempfile.TemporaryDirectory()
        cls.certs = make_certs(cls.tmp_class.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp_class.cleanup()

    def setUp(self):
        for var in ("FANOUT_REDIS_PASSWORD", "FANOUT_CA_BUNDLE", "FANOUT_LOG_LEVEL"):
            os.environ.pop(var, None)
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        self.tmp.cleanup()

    def server(self, *extra, **kw):
        s = RedisServer(self.dir, *extra, **kw)
        self.servers.append(s)
        return s

    def client(self, srv, **kw):
        c = srv.client(**kw)
        self.addCleanup(c.close)
        return c

    def invoke(self, mappings, event, env=None):
        e = dict(FAST)
        e.update(env or {})
        return harness.invoke(self.dir, mappings, event, env=e)

    def assertDelivered(self, r, failed=()):
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(failed, [])

    # ---- records stored ----

    def test_kinesis_records_stored_by_partition_key(self):
        srv = self.server()
        recs = [("user-1", b'{"n":1}'), ("user-2", "h\u00e9llo".encode()), ("user-3", b"")]
        for dest in ("127.0.0.1:%d" % srv.port, "localhost:%d" % srv.port):
            r, failed = self.invoke([redis_map(dest)], harness.kinesis_event(recs))
            self.assertDelivered(r, failed)
            c = self.client(srv)
            for key, data in recs:
                self.assertEqual(c.get(key), data)
            self.assertEqual(c.cmd("TTL", "user-1"), -1)  # no TTL unless asked
            c.cmd("FLUSHALL")
            c.close()
        self.assertIn("3 delivered, 0 failed", r.stderr.decode())

    def test_ipv6_literal(self):
        srv = self.server("--bind", "127.0.0.1", "::1")
        r, failed = self.invoke([redis_map("[::1]:%d" % srv.port)],
                                harness.kinesis_event([("v6", b"over ipv6")]))
        self.assertDelivered(r, failed)
        self.assertEqual(self.client(srv).get("v6"), b"over ipv6")

    def test_dynamodb_keys(self):
        """Keys are the DynamoDB key values joined by '|'; the data is the
        NewImage as plain JSON. Checked against the file plugin's view of
        the same records (last record of a key wins)."""
        srv = self.server()
        ev = load_event("dynamodb.json")
        arn = ev["Records"][0]["eventSourceARN"]
        out = os.path.join(self.dir, "ddb.jsonl")
        r, failed = self.invoke(
            [redis_map("127.0.0.1:%d" % srv.port, source=arn, convertDDB=True),
             harness.mapping("f", "file", out, source=arn, convertDDB=True)], ev)
        self.assertDelivered(r, failed)
        want = {}
        with open(out, encoding="utf-8") as f:
            for line in f:
                obj = json.loads(line)
                want[obj["key"]] = obj["data"].encode()
        self.assertIn("h1002-0|0", want)
        c = self.client(srv)
        for key, data in want.items():
            self.assertEqual(c.get(key), data, key)
        self.assertEqual(sorted(k.decode() for k in c.cmd("KEYS", "*")), sorted(want))
        self.assertIn('"big":12345678901234567890123456789.5', c.get("h1002-0|0").decode())

    def test_kpl_binary_values_intact(self):
        srv = self.server()
        want, corrupt = {}, None
        with open(harness.sample_event("kpl-aggregated.expected.jsonl"),
                  encoding="utf-8") as f:
            for line in f:
                obj = json.loads(line)
                if "corrupt" in obj:
                    corrupt = obj["corrupt"]
                else:
                    want[obj["key"]] = base64.b64decode(obj["dataB64"])
        ev = harness.sample_event("kpl-aggregated.json")
        arn = load_event("kpl-aggregated.json")["Records"][0]["eventSourceARN"]
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, source=arn,
                                           deaggregate=True)], ev)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(failed, [corrupt])  # only the corrupt aggregate
        c = self.client(srv)
        binary = 0
        for key, data in want.items():
            self.assertEqual(c.get(key.encode()), data, key)
            try:
                data.decode()
            except UnicodeDecodeError:
                binary += 1
        self.assertGreaterEqual(binary, 1)  # KPL user records with non-UTF-8 data

    # ---- options ----

    def test_ttl(self):
        srv = self.server()
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, ttlSeconds=120)],
                                harness.kinesis_event([("t1", b"a"), ("t2", b"b")]))
        self.assertDelivered(r, failed)
        c = self.client(srv)
        for key in ("t1", "t2"):
            ttl = c.cmd("TTL", key)
            self.assertTrue(0 < ttl <= 120, ttl)
        self.assertEqual(c.get("t2"), b"b")

    def test_mset(self):
        srv = self.server()
        recs = [("m%d" % i, b"value-%d" % i) for i in range(5)] + [("m0", b"last wins")]
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, command="MSET")],
                                harness.kinesis_event(recs))
        self.assertDelivered(r, failed)
        c = self.client(srv)
        self.assertEqual(c.get("m0"), b"last wins")
        for i in range(1, 5):
            self.assertEqual(c.get("m%d" % i), b"value-%d" % i)
        stats = c.cmd("INFO", "commandstats").decode()
        self.assertIn("cmdstat_mset:calls=1,", stats)
        self.assertNotIn("cmdstat_set:", stats)

    def test_database_number(self):
        srv = self.server("--databases", "16")
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, database=5)],
                                harness.kinesis_event([("db", b"in five")]))
        self.assertDelivered(r, failed)
        c = self.client(srv)
        self.assertIsNone(c.get("db"))
        c.cmd("SELECT", 5)
        self.assertEqual(c.get("db"), b"in five")
        # a database the server does not have: refused for good, said why
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, database=99)],
                                harness.kinesis_event([("db", b"x")]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn('SELECT 99 ("database") refused', err)
        self.assertIn("DB index is out of range", err)
        self.assertIn("(1 attempt)", err)

    # ---- AUTH ----

    def test_auth_password_from_environment(self):
        srv = self.server("--requirepass", PASSWORD)
        dest = "127.0.0.1:%d" % srv.port
        ev = harness.kinesis_event([("a", b"authenticated")])
        debug = {"FANOUT_LOG_LEVEL": "debug"}
        # the default variable
        r, failed = self.invoke([redis_map(dest)], ev,
                                env=dict(debug, FANOUT_REDIS_PASSWORD=PASSWORD))
        self.assertDelivered(r, failed)
        self.assertNotIn(PASSWORD, r.stderr.decode() + r.stdout.decode())
        self.assertEqual(self.client(srv, password=PASSWORD).get("a"), b"authenticated")
        # a variable the mapping names wins over the default one
        r, failed = self.invoke([redis_map(dest, passwordEnv="CACHE_TOKEN")], ev,
                                env=dict(debug, CACHE_TOKEN=PASSWORD,
                                         FANOUT_REDIS_PASSWORD=WRONG_PASSWORD))
        self.assertDelivered(r, failed)
        # a wrong password: a clear, permanent error, and no password in the logs
        r, failed = self.invoke([redis_map(dest)], ev,
                                env=dict(debug, FANOUT_REDIS_PASSWORD=WRONG_PASSWORD))
        log = r.stderr.decode() + r.stdout.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertEqual(failed, ["1000"])
        self.assertIn("AUTH refused by %s" % dest, log)
        self.assertIn("WRONGPASS", log)
        self.assertIn("password from FANOUT_REDIS_PASSWORD", log)
        self.assertIn("(1 attempt)", log)
        self.assertNotIn(WRONG_PASSWORD, log)
        self.assertNotIn(PASSWORD, log)
        # no password at all: the server's NOAUTH, with what to set
        r, failed = self.invoke([redis_map(dest)], ev, env=debug)
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertIn("NOAUTH", log)
        self.assertIn("set FANOUT_REDIS_PASSWORD", log)
        # passwordEnv naming a variable that is not set
        r, failed = self.invoke([redis_map(dest, passwordEnv="NOT_SET_ANYWHERE")], ev)
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertIn("NOT_SET_ANYWHERE, which is not set", log)

    def test_acl_user(self):
        srv = self.server("--user", "writer", "on", ">" + PASSWORD, "~*", "&*", "+@all",
                          "--user", "reader", "on", ">" + PASSWORD, "~*", "+@read")
        dest = "127.0.0.1:%d" % srv.port
        ev = harness.kinesis_event([("acl", b"by writer")])
        env = {"FANOUT_REDIS_PASSWORD": PASSWORD}
        r, failed = self.invoke([redis_map(dest, username="writer")], ev, env=env)
        self.assertDelivered(r, failed)
        self.assertEqual(self.client(srv).get("acl"), b"by writer")
        # a user without the right to SET: NOPERM, permanent
        r, failed = self.invoke([redis_map(dest, username="reader")], ev, env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("failed: NOPERM", err)
        self.assertIn("(1 attempt)", err)

    # ---- TLS ----

    def test_tls_with_verification(self):
        cert, key, ca = self.certs
        srv = self.server("--requirepass", PASSWORD, tls=(cert, key, ca))
        ev = harness.kinesis_event([("tls", b"encrypted in transit")])
        env = {"FANOUT_REDIS_PASSWORD": PASSWORD, "FANOUT_CA_BUNDLE": ca}
        for dest, extra in (("localhost:%d" % srv.port, {}),
                            ("127.0.0.1:%d" % srv.port, {}),  # IP SAN
                            ("127.0.0.1:%d" % srv.port, {"tlsServerName": "redis.test"})):
            r, failed = self.invoke([redis_map(dest, tls=True, **extra)], ev, env=env)
            self.assertDelivered(r, failed)
        c = self.client(srv, tls_ca=ca, password=PASSWORD)
        self.assertEqual(c.get("tls"), b"encrypted in transit")
        # one kept TLS connection for several calls (the idle check reads
        # through TLS 1.3 session tickets without calling it dead)
        many = harness.kinesis_event([("t%d" % (i % 7), b"%d" % i) for i in range(2100)])
        r, failed = self.invoke([redis_map("localhost:%d" % srv.port, tls=True,
                                           parallel=False)], many,
                                env=dict(env, FANOUT_LOG_LEVEL="debug"))
        self.assertDelivered(r, failed)
        log = r.stderr.decode()
        self.assertIn("2100 messages, 3 calls, 2100 delivered", log)
        self.assertNotIn("reconnecting", log)
        self.assertEqual(c.get("t6"), b"2099")

        # a name the certificate does not carry
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, tls=True,
                                           tlsServerName="other.test")], ev, env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("TLSVerifyFailed", err)
        self.assertIn("hostname mismatch", err)
        self.assertIn('name checked: "other.test"', err)
        # the test CA is not trusted without FANOUT_CA_BUNDLE
        r, failed = self.invoke([redis_map("localhost:%d" % srv.port, tls=True)], ev,
                                env={"FANOUT_REDIS_PASSWORD": PASSWORD})
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("the TLS certificate of localhost:%d was refused" % srv.port, err)
        self.assertRegex(err, "refused: (self-signed certificate in certificate chain|"
                              "unable to get local issuer certificate)")
        self.assertIn("FANOUT_CA_BUNDLE", err)
        self.assertIn("(1 attempt)", err)
        self.assertNotIn(PASSWORD, err)
        # plain text to a TLS-only port: the hint to set tls
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port)], ev, env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn('set "tls": true', err)

    def test_values_of_every_size_arrive_intact(self):
        """Short arguments are copied next to their framing, longer ones
        are sent from the records where they are (plain: several pieces
        per sendmsg; TLS: gathered into 16 KiB records): values on both
        sides of the cut, and ones larger than a record or a socket buffer,
        arrive byte for byte, with SET and MSET, TTL or not, plain and TLS."""
        cert, key, ca = self.certs
        sizes = [0, 1, 31, 32, 33, 34, 200, 16383, 16384, 16385, 70001, 3 << 20]
        recs = [("k%d-%s" % (n, "x" * (n % 40)), bytes((i * 7 + n) % 256 for i in range(n))
                 if n < 70000 else os.urandom(n)) for n in sizes]
        recs += [("long-key-" + "y" * 100, b"z" * 100)]
        ev = harness.kinesis_event(recs)
        plain = self.server()
        tls = self.server(tls=(cert, key, ca))
        env = {"FANOUT_CA_BUNDLE": ca}
        for srv, opts in ((plain, {}), (plain, {"command": "MSET"}),
                          (plain, {"ttlSeconds": 600}), (tls, {"tls": True}),
                          (tls, {"tls": True, "command": "MSET"})):
            r, failed = self.invoke([redis_map("localhost:%d" % srv.port, **opts)], ev,
                                    env=env)
            self.assertDelivered(r, failed)
            self.assertNotIn("reconnecting", r.stderr.decode())  # no exchange broke
            c = self.client(srv, tls_ca=ca) if srv is tls else self.client(srv)
            for k, v in recs:
                self.assertEqual(c.get(k), v, (opts, k[:20], len(v)))
            if "ttlSeconds" in opts:
                self.assertGreater(c.cmd("TTL", recs[-1][0]), 0)
            c.cmd("FLUSHALL")
            c.close()

    def test_tls_to_a_plain_port(self):
        """Redis waits for the end of an inline command that never comes: a
        timeout, with the question to ask."""
        srv = self.server()
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, tls=True,
                                           timeoutMs=300)],
                                harness.kinesis_event([("x", b"y")]),
                                env={"FANOUT_CA_BUNDLE": self.certs[2],
                                     "FANOUT_RETRY_ATTEMPTS": "1"})
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("no TLS handshake with 127.0.0.1:%d within 300 ms" % srv.port, err)
        self.assertIn("does the server accept TLS on this port?", err)

    # ---- errors the server answers ----

    def test_oom_is_retried_then_reported(self):
        srv = self.server("--maxmemory", "1", "--maxmemory-policy", "noeviction")
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port)],
                                harness.kinesis_event([("a", b"1"), ("b", b"2")]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000", "1001"])
        self.assertIn("retryable failure: OOM: OOM command not allowed", err)
        self.assertIn("(gave up after 4 attempts)", err)

    def test_busy_script_is_retried_until_it_ends(self):
        srv = self.server("--busy-reply-threshold", "50")
        blocker = self.client(srv)
        blocker.send("EVAL", "while true do end", 0)
        time.sleep(0.3)  # past the busy threshold: other clients get BUSY

        def kill():
            time.sleep(0.8)
            k = self.client(srv)
            k.cmd("SCRIPT", "KILL")
            k.close()
        t = threading.Thread(target=kill)
        t.start()
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port)],
                                harness.kinesis_event([("busy", b"after the script")]),
                                env={"FANOUT_RETRY_ATTEMPTS": "40",
                                     "FANOUT_RETRY_BASE_MS": "100",
                                     "FANOUT_RETRY_CAP_MS": "100"})
        t.join()
        err = r.stderr.decode()
        self.assertDelivered(r, failed)
        self.assertIn("retryable failure", err)
        self.assertEqual(self.client(srv).get("busy"), b"after the script")
        blocker.close()

    def test_replica_readonly_is_retryable(self):
        primary = self.server()
        replica = self.server("--replicaof", "127.0.0.1", str(primary.port))
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % replica.port)],
                                harness.kinesis_event([("ro", b"x")]),
                                env={"FANOUT_RETRY_ATTEMPTS": "2"})
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("retryable failure: READONLY", err)
        self.assertIn("reaches a replica", err)

    def test_cluster_moved_is_refused(self):
        a = self.server("--cluster-enabled", "yes", "--cluster-config-file", "a.conf",
                        name="cluster-a", port=cluster_port())
        b = self.server("--cluster-enabled", "yes", "--cluster-config-file", "b.conf",
                        name="cluster-b", port=cluster_port())
        ca, cb = self.client(a), self.client(b)
        ca.cmd("CLUSTER", "ADDSLOTSRANGE", 0, 8191)
        cb.cmd("CLUSTER", "ADDSLOTSRANGE", 8192, 16383)
        ca.cmd("CLUSTER", "MEET", "127.0.0.1", b.port)
        end = time.time() + 15
        while b"cluster_state:ok" not in ca.cmd("CLUSTER", "INFO"):
            self.assertLess(time.time(), end, "cluster did not form")
            time.sleep(0.1)
        self.assertEqual(ca.cmd("CLUSTER", "KEYSLOT", "bar"), 5061)   # on a
        self.assertEqual(ca.cmd("CLUSTER", "KEYSLOT", "foo"), 12182)  # on b
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % a.port)],
                                harness.kinesis_event([("bar", b"here"), ("foo", b"there")]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1001"])
        self.assertIn("failed: MOVED: cluster mode is not supported", err)
        self.assertIn("(1 attempt)", err)
        self.assertEqual(ca.get("bar"), b"here")

    # ---- connections ----

    def test_server_killed(self):
        srv = self.server()
        ev = harness.kinesis_event([("k1", b"a"), ("k2", b"b")])
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port)], ev)
        self.assertDelivered(r, failed)
        srv.stop()
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port)], ev)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000", "1001"])
        self.assertIn("cannot connect to 127.0.0.1:%d: Connection refused" % srv.port, err)
        self.assertIn("(gave up after 4 attempts)", err)

    def test_no_reply_times_out(self):
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever answers
        port = silent.getsockname()[1]
        try:
            t0 = time.time()
            r, failed = self.invoke([redis_map("127.0.0.1:%d" % port, timeoutMs=200)],
                                    harness.kinesis_event([("t", b"x")]),
                                    env={"FANOUT_RETRY_ATTEMPTS": "2"})
            took = time.time() - t0
        finally:
            silent.close()
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("no reply from 127.0.0.1:%d within 200 ms (timeoutMs)" % port, err)
        self.assertIn("(gave up after 2 attempts)", err)
        self.assertLess(took, 10)

    def test_connection_dropped_mid_pipeline_resends_the_exchange(self):
        """The first connection loses its replies after the third: the
        exchange never got its closing PING's reply, so the three +OKs read
        prove nothing (a stray reply read before a break looks the same):
        the plugin reconnects once and sends every command again, in order
        (an ordered target writing one key: the last wins)."""
        srv = self.server()
        proxy = DroppingProxy(srv.port, limit=3 * len(b"+OK\r\n"))
        try:
            recs = [("k%d" % (i % 4), b"v%d" % i) for i in range(10)]
            r, failed = self.invoke([redis_map("127.0.0.1:%d" % proxy.port, parallel=False)],
                                    harness.kinesis_event(recs))
        finally:
            proxy.close()
        err = r.stderr.decode()
        self.assertDelivered(r, failed)
        self.assertIn("reconnecting and sending again the 10 commands of that exchange "
                      "(3 of them had a reply", err)
        self.assertEqual(proxy.conns, 2)
        c = self.client(srv)
        for i in range(6, 10):
            self.assertEqual(c.get("k%d" % (i % 4)), b"v%d" % i)
        calls = int(c.cmd("INFO", "commandstats").decode()
                    .split("cmdstat_set:calls=")[1].split(",")[0])
        self.assertTrue(13 <= calls <= 20, calls)  # all 10 sent again

    def run_runtime(self, maps, events, after_first=None, env=None):
        """fanout as a Lambda custom runtime (one process, several
        invocations) against tests/servers/runtime_emulator.py. `after_first` runs
        once the first invocation is answered. Returns (log, answers)."""
        cfg = os.path.join(self.dir, "mappings.json")
        with open(cfg, "w") as f:
            json.dump(maps, f)
        evfile = os.path.join(self.dir, "events.json")
        out = os.path.join(self.dir, "api.jsonl")
        with open(evfile, "w") as f:
            json.dump(events, f)
        emu = harness.runtime_emulator(evfile, out)
        try:
            port = emu.stdout.readline().decode().strip()
            e = dict(os.environ)
            e.update(FAST)
            e.update({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:" + port, "FANOUT_CONFIG": cfg,
                      "FANOUT_PLUGIN_PATH": harness.plugin_path(),
                      "FANOUT_LOG_LEVEL": "debug"})
            e.update(env or {})
            proc = subprocess.Popen([harness.FANOUT], env=e, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            if after_first:
                end = time.time() + 20
                while True:
                    with open(out) as f:
                        if any(json.loads(line)["kind"] in ("response", "error")
                               for line in f):
                            break
                    self.assertLess(time.time(), end, "no first answer")
                    time.sleep(0.02)
                after_first()
            _, stderr = proc.communicate(timeout=30)
        finally:
            emu.kill()
            emu.wait()
            emu.stdout.close()
        log = stderr.decode()
        # the exit status says little here (the emulator hangs up): check
        # the ASan + UBSan build's reports directly
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error:", log)
        with open(out) as f:
            posts = [json.loads(line) for line in f]
        return log, [p for p in posts if p["kind"] in ("response", "error")]

    def test_reconnect_after_restart_between_invocations(self):
        """One fanout process across three invocations; the server restarts
        during the second (a slow `flaky` target keeps it busy), so the kept
        connection is dead by the third: reopened, nothing lost."""
        srv = self.server()
        src_redis = harness.KINESIS_SOURCE
        src_slow = "arn:aws:kinesis:us-east-1:123456789012:stream/slow"
        maps = [redis_map("127.0.0.1:%d" % srv.port, source=src_redis),
                harness.mapping("slow", "flaky", os.path.join(self.dir, "flaky.log"),
                                source=src_slow)]
        events = [{"event": harness.kinesis_event([("first", b"1")], arn=src_redis)},
                  {"event": harness.kinesis_event([("x", b"sleep:2500:")], arn=src_slow)},
                  {"event": harness.kinesis_event([("third", b"3")], arn=src_redis)}]

        def restart():
            self.assertEqual(self.client(srv).get("first"), b"1")
            srv.restart()
        log, posts = self.run_runtime(maps, events, after_first=restart)
        self.assertEqual([p["kind"] for p in posts], ["response"] * 3, log)
        for p in posts:
            self.assertEqual(json.loads(p["body"]), {"batchItemFailures": []})
        c = self.client(srv)
        self.assertEqual(c.get("third"), b"3")
        self.assertIsNone(c.get("first"))  # a new, empty server: no persistence
        self.assertEqual(log.count("opened redis instance"), 1, log)
        self.assertIn("was closed since it was last used, or has unread bytes; reconnecting",
                      log)

    def test_invocation_deadline_bounds_the_wait(self):
        """timeoutMs is 10 s, but the invocation has 2.5 s: the plugin stops
        waiting early enough (500 ms before the deadline) for the failure
        to be reported in time."""
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        try:
            t0 = time.time()
            log, posts = self.run_runtime(
                [redis_map("127.0.0.1:%d" % port, timeoutMs=10000)],
                [{"event": harness.kinesis_event([("d", b"x")]), "timeoutMs": 2500}])
            took = time.time() - t0
        finally:
            silent.close()
        self.assertEqual([p["kind"] for p in posts], ["error"], log)
        self.assertIn("no reply from 127.0.0.1:%d before the invocation's deadline" % port,
                      log)
        self.assertLess(took, 5, log)

    # ---- order ----

    def test_parallel_false_keeps_order_across_calls(self):
        """2,500 records on 10 keys: three calls (1,000 commands each at most)
        sent one after the other; each key ends with its last record."""
        srv = self.server()
        n = 2500
        recs = [("o%d" % (i % 10), b"%d" % i) for i in range(n)]
        for command in ("SET", "MSET"):
            r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, parallel=False,
                                               command=command)],
                                    harness.kinesis_event(recs))
            self.assertDelivered(r, failed)
            self.assertIn("2500 messages, 3 calls, 2500 delivered", r.stderr.decode())
            c = self.client(srv)
            for k in range(10):
                last = max(i for i in range(n) if i % 10 == k)
                self.assertEqual(c.get("o%d" % k), b"%d" % last, command)
            c.cmd("FLUSHALL")
            c.close()

    def test_ordered_target_resends_after_a_retryable_failure(self):
        """One node owning half the slots, cluster-require-full-coverage no:
        "bar" is stored, "foo" gets CLUSTERDOWN (retryable). With parallel:
        false the records after "foo" are sent again after it (so a retry of
        foo can never land after a later record), and reported with it when
        it keeps failing; with parallel: true only foo fails."""
        a = self.server("--cluster-enabled", "yes", "--cluster-config-file", "solo.conf",
                        "--cluster-require-full-coverage", "no", name="solo",
                        port=cluster_port())
        ca = self.client(a)
        ca.cmd("CLUSTER", "ADDSLOTSRANGE", 0, 8191)
        end = time.time() + 15
        while True:
            try:
                ca.cmd("SET", "bar", "probe")
                break
            except RespError:
                self.assertLess(time.time(), end, "node did not serve its slots")
                time.sleep(0.1)
        recs = [("bar", b"1"), ("foo", b"2"), ("bar", b"3")]
        env = {"FANOUT_RETRY_ATTEMPTS": "2"}
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % a.port, parallel=False)],
                                harness.kinesis_event(recs), env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1001", "1002"])
        self.assertIn("retryable failure: CLUSTERDOWN", err)
        self.assertIn("OrderKept", err)
        self.assertEqual(ca.get("bar"), b"3")
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % a.port)],
                                harness.kinesis_event(recs), env=env)
        self.assertEqual(failed, ["1001"], r.stderr.decode())

    # ---- a DynamoDB table mirrored (deleteOnRemove) ----

    def assertMirrors(self, c, table, others=()):
        """Redis holds exactly the table's items (and the keys `others`):
        every key, nothing more, each value the plain-JSON NewImage."""
        self.assertEqual(sorted(k.decode() for k in c.cmd("KEYS", "*")),
                         sorted(list(table.items) + list(others)))
        for key, item in table.items.items():
            self.assertEqual(json.loads(c.get(key)), item, key)

    def test_redis_mirror_of_a_dynamodb_table(self):
        """INSERT, MODIFY and REMOVE of several keys over three invocations,
        with a REMOVE and an INSERT of one key in one batch (both orders),
        a MODIFY after a REMOVE, and REMOVEs of keys that are not there:
        after each invocation Redis holds exactly the table."""
        srv = self.server()
        table = DdbTable()
        m = redis_map("127.0.0.1:%d" % srv.port, source=table.arn, convertDDB=True,
                      deleteOnRemove=True)
        c = self.client(srv)
        c.cmd("SET", "unrelated", "kept")  # not the table's: never touched
        steps = [
            [("INSERT", "user", 1, {"name": "Ann", "tags": ["a", "b"], "vip": True}),
             ("INSERT", "user", 2, {"name": "Bob", "n": 2}),
             ("INSERT", "user", 3, {"name": "Cy", "addr": {"city": "Oslo", "zip": None}}),
             ("INSERT", "order", 7, {"total": 12.5}),
             ("REMOVE", "ghost", 0, None)],  # never there: :0 confirms it
            [("MODIFY", "user", 1, {"name": "Ann", "tags": ["a"], "vip": False}),
             ("REMOVE", "user", 2, None),
             ("REMOVE", "user", 3, None),
             ("INSERT", "user", 3, {"name": "Cy again"}),  # REMOVE then INSERT
             ("INSERT", "user", 4, {"name": "Dee"}),
             ("REMOVE", "user", 4, None),  # INSERT then REMOVE: gone
             ("REMOVE", "user", 2, None)],  # removed twice in one batch
            [("REMOVE", "order", 7, None),
             ("MODIFY", "order", 7, {"total": 99}),  # MODIFY after REMOVE: set
             ("REMOVE", "user", 1, None),
             ("INSERT", "user", 2, {"name": "Bob is back"}),
             ("REMOVE", "nobody", 5, None)],
        ]
        for i, changes in enumerate(steps):
            r, failed = self.invoke([m], table.event(changes))
            self.assertDelivered(r, failed)
            err = r.stderr.decode()
            self.assertIn("%d delivered, 0 failed" % len(changes), err)
            self.assertMirrors(c, table, others=["unrelated"])
            self.assertEqual(c.get("unrelated"), b"kept")
        self.assertEqual(sorted(table.items), ["order|7", "user|2", "user|3"])
        # without deleteOnRemove, REMOVE stores its (empty) NewImage, as before
        del m["deleteOnRemove"]
        r, failed = self.invoke([m], table.event([("REMOVE", "user", 3, None)]))
        self.assertDelivered(r, failed)
        self.assertEqual(c.get("user|3"), b"{}")

    def test_mirror_keeps_each_key_in_order_in_one_call(self):
        """2,500 changes of 10 keys, INSERT and REMOVE by turns, to a
        parallel target: with deleteOnRemove one call takes the whole batch
        (10,000 commands at most), so no key's SET and DEL land in calls
        running at once; each key ends as its last change left it."""
        srv = self.server()
        table = DdbTable()
        changes = [("REMOVE" if (i // 10) % 2 else "INSERT", "k", i % 10, {"i": i})
                   for i in range(2500)]
        # the last 5 cut: keys 0-4 end with a REMOVE, 5-9 with an INSERT
        changes = changes[:-5]
        r, failed = self.invoke([redis_map("127.0.0.1:%d" % srv.port, source=table.arn,
                                           convertDDB=True, deleteOnRemove=True)],
                                table.event(changes))
        self.assertDelivered(r, failed)
        self.assertIn("2495 messages, 1 calls, 2495 delivered", r.stderr.decode())
        self.assertEqual(sorted(table.items), ["k|%d" % k for k in range(5, 10)])
        self.assertMirrors(self.client(srv), table)

    # ---- validation ----

    def test_validation(self):
        bad = {
            "noport": ("cache.example.com", "missing the port"),
            "port0": ("cache.example.com:0", "the port must be a number from 1 to 65535"),
            "portbig": ("cache.example.com:70000", "the port must be a number from 1 to 65535"),
            "portword": ("cache.example.com:redis", "the port must be a number"),
            "url": ("redis://cache.example.com:6379", "a URL is not accepted"),
            "v6bare": ("::1:6379", "an IPv6 address needs brackets"),
            "v6noport": ("[::1]", 'missing the port after "]"'),
            "v6bad": ("[nope]:6379", '"nope" inside brackets is not an IPv6 address'),
            "v4bad": ("999.1.1.1:6379", '"999.1.1.1" is not an IPv4 address'),
            "name": ("bad!name:6379", '"bad!name" is not a valid host name'),
            "empty": (":6379", "the host is empty"),
        }
        maps = [redis_map(d, id_=i) for i, (d, _) in bad.items()]
        role = "arn:aws:iam::123456789012:role/cache-writer"
        maps += [
            redis_map("cache.example.com:6379", id_="delmset", source=harness.DDB_SOURCE,
                      command="MSET", deleteOnRemove=True),
            redis_map("cache.example.com:6379", id_="delkinesis", deleteOnRemove=True),
            redis_map("cache.example.com:6379", id_="role", role=role),
            redis_map("cache.example.com:6379", id_="region", region="eu-west-1"),
            redis_map("cache.example.com:6379", id_="msetttl", command="MSET", ttlSeconds=60),
            redis_map("cache.example.com:6379", id_="cmd", command="GETSET"),
            redis_map("cache.example.com:6379", id_="pwenv", passwordEnv="hunter2 is my pw"),
            redis_map("cache.example.com:6379", id_="sni", tlsServerName="cache.example.com"),
            redis_map("cache.example.com:6379", id_="collapse", collapse="JSON"),
            redis_map("cache.example.com:6379", id_="timeout", timeoutMs=0),
        ]
        good = [redis_map("cache.example.com:6379", id_="ok1"),
                redis_map("10.0.0.5:6380", id_="ok2", tls=True, tlsServerName="cache.internal",
                          database=3, ttlSeconds=60, passwordEnv="CACHE_TOKEN"),
                redis_map("[2001:db8::5]:6379", id_="ok3", command="mset"),
                redis_map("cache.example.com:6379", id_="ok4", source=harness.DDB_SOURCE,
                          deleteOnRemove=True, ttlSeconds=60)]
        cfg = os.path.join(self.dir, "v.json")
        with open(cfg, "w") as f:
            json.dump(maps + good, f)
        r = harness.run_fanout(["validate", "--config", cfg])
        out = r.stdout.decode() + r.stderr.decode()
        self.assertEqual(r.returncode, 2, out)
        for i, (_, why) in bad.items():
            self.assertIn('mapping "%s": field "destination": %s' % (i, why), out)
        # aws-lambda-fanout ignored role, region and collapse on redis: so does fanout, loudly
        for f in ("role", "region", "collapse"):
            self.assertRegex(out, r'warning: mapping "%s"[^\n]*field "%s" [^\n]*ignored for '
                                  r'type "redis", as aws-lambda-fanout ignored it' % (f, f))
        self.assertIn('"ttlSeconds" cannot be used with "command": "MSET"', out)
        self.assertIn('"command" must be "SET" or "MSET"', out)
        self.assertIn('"passwordEnv" must be the NAME of an environment variable', out)
        self.assertNotIn("hunter2", out)
        self.assertIn('"tlsServerName" needs "tls": true', out)
        self.assertIn('mapping "timeout": field "timeoutMs"', out)
        self.assertIn("e.g. my-cache.abc123.ng.0001.use1.cache.amazonaws.com:6379", out)
        self.assertIn('mapping "delmset": field "deleteOnRemove": cannot be used with '
                      '"command": "MSET"', out)
        self.assertIn('mapping "delkinesis": field "deleteOnRemove": applies only to a '
                      'DynamoDB Streams source', out)
        self.assertIn("%d mappings, 7 valid, %d invalid" % (len(maps) + 4, len(maps) - 3), out)


class RedisChaosCase(harness.CacheChaosCase):
    """The Redis side of harness.CacheChaosCase."""

    KIND = "redis"
    ENV = FAST

    def setUp(self):
        os.environ.pop("FANOUT_REDIS_PASSWORD", None)
        super().setUp()

    def mapping(self, srv, **opts):
        opts.setdefault("timeoutMs", 500)
        return redis_map(srv.address, **opts)

    def assertErrorRepliesFail(self, cases):
        """cases: (error reply, code, attempts): every record fails with
        that code, after that many attempts (retryable ones are retried)."""
        for reply, code, attempts in cases:
            with self.subTest(reply=reply):
                srv = self.chaos("reply:" + reply)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, code,
                                     "(1 attempt)" if attempts == 1
                                     else "(gave up after %d attempts)" % attempts)


class MisbehavingServer(RedisChaosCase):
    """tests/servers/cache_chaos.py plays a Redis that answers the plugin's
    commands wrongly. In every case the process ends (no signal, bounded
    time and peak RSS), the records the server did not confirm with their
    own +OK are reported failed (exit 1) or were resent to success, and
    none is counted twice."""

    def test_reply_types_set_cannot_get(self):
        """SET (no NX/XX/GET) and MSET get +OK or an error, nothing else: an
        integer, a bulk string, a nil, an array, a RESP3 type or another
        status is a protocol error, never a confirmation."""
        for reply in (":1", "$2\\r\\nOK", "$-1", "*1\\r\\n+OK", "*0", "_", "#t", ",1.5",
                      "+QUEUED", "+PONG", "+ok", "+OK extra", ">2\\r\\n+a\\r\\n+b"):
            for command in ("SET", "MSET"):
                with self.subTest(reply=reply, command=command):
                    srv = self.chaos("reply:" + reply)
                    rc, log, failed = self.run_one(srv, command=command)
                    self.assertAllFailed(rc, log, failed, "ProtocolError")
                    self.assertGreater(srv.connections, 1)  # dropped, resent

    def test_error_replies_fail_the_records(self):
        self.assertErrorRepliesFail((("-ERR something", "ERR", 1),
                                     ("-WRONGTYPE Operation against a key", "WRONGTYPE", 1),
                                     ("-OOM command not allowed", "OOM", 4)))

    def test_extra_replies(self):
        for command in ("SET", "MSET"):
            with self.subTest(command=command):
                srv = self.chaos("extra")
                rc, log, failed = self.run_one(srv, command=command)
                self.assertAllFailed(rc, log, failed, "ProtocolError", "out of step")
                srv = self.chaos("extra", bad=1)
                rc, log, failed = self.run_one(srv, command=command)
                self.assertAllDelivered(rc, log, failed, srv)
                self.assertIn("ProtocolError", log)
                self.assertEqual(srv.connections, 2)

    def test_reply_before_any_command(self):
        srv = self.chaos("early")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "ProtocolError")
        srv = self.chaos("early", bad=1)
        rc, log, failed = self.run_one(srv)
        self.assertAllDelivered(rc, log, failed, srv)

    def test_writes_cut_anywhere_resume_in_place(self):
        """A server that reads slowly through a small buffer: once the
        socket's buffer is full (a few MB on loopback), the plugin's writes
        stop part-way through its pieces (framing, copied short arguments,
        values sent from the records) and must resume where they stopped.
        Every value arrives byte for byte, on one connection."""
        recs = [("s%d-%s" % (n, "k" * (n % 37)), bytes((i * 13 + n) % 256 for i in range(n)))
                for n in (0, 5, 32, 33, 200, 4095, 4097, 50000, 120001)]
        recs += [("big%d" % i, os.urandom(5 << 19)) for i in range(2)]  # 2.5 MiB
        recs += [("r%d" % i, bytes([65 + i % 26]) * (30 + i % 7)) for i in range(300)]
        srv = self.chaos("slowread")
        rc, log, failed, _, _ = invoke_measured(
            harness, self.dir, [redis_map(srv.address, timeoutMs=20000)],
            harness.kinesis_event(recs), env=FAST)
        self.assertEqual(rc, 0, log)
        self.assertEqual(failed, [], log)
        self.assertEqual(srv.connections, 1, log)
        for k, v in recs:
            self.assertEqual(srv.stored.get(k.encode()), v, (k[:20], len(v)))

    def test_replies_before_the_command_was_sent(self):
        """A 16 MiB value takes several writes; the server answers +OK and
        +PONG at its first bytes. Those replies were not caused by the
        command: protocol error, then resent on a new connection."""
        srv = self.chaos("ahead", bad=1)
        big = b"v" * (16 << 20)
        rc, log, failed, _, _ = invoke_measured(
            harness, self.dir, [redis_map(srv.address, timeoutMs=2000)],
            harness.kinesis_event([("big", big)]), env=FAST)
        self.assertEqual(rc, 0, log)
        self.assertIn("before it was sent entirely", log)
        self.assertEqual(srv.stored.get(b"big"), big)
        self.assertEqual(srv.connections, 2)

    def run_two_invocations(self, srv):
        """Two batches in one process (the Lambda loop), a slow target's
        invocation between them: the second batch reuses the connection."""
        src_slow = "arn:aws:kinesis:us-east-1:123456789012:stream/slow"
        maps = [redis_map(srv.address, timeoutMs=500),
                harness.mapping("slow", "flaky", os.path.join(self.dir, "flaky.log"),
                                source=src_slow)]
        events = [{"event": harness.kinesis_event([("a%d" % i, b"1") for i in range(3)])},
                  {"event": harness.kinesis_event([("x", b"sleep:300:")], arn=src_slow)},
                  {"event": harness.kinesis_event([("b%d" % i, b"2") for i in range(3)])}]
        top = self.dir
        self.dir = tempfile.mkdtemp(dir=top)  # run_runtime's files, per run
        try:
            log, posts = RedisPlugin.run_runtime(self, maps, events)
        finally:
            self.dir = top
        self.assertEqual([p["kind"] for p in posts], ["response"] * 3, log)
        for p in posts:
            self.assertEqual(json.loads(p["body"]), {"batchItemFailures": []}, log)
        for k in ["a%d" % i for i in range(3)] + ["b%d" % i for i in range(3)]:
            self.assertIn(k.encode(), srv.stored)
        return log

    def test_reply_left_over_from_the_previous_batch(self):
        srv = self.chaos("stale")
        log = self.run_two_invocations(srv)
        self.assertIn("where the closing PING's +PONG was due", log)
        self.assertEqual(srv.connections, 2, log)
        srv = self.chaos("leftover")
        log = self.run_two_invocations(srv)
        self.assertIn("was closed since it was last used, or has unread bytes; reconnecting",
                      log)
        self.assertEqual(srv.connections, 2, log)

    def test_huge_bulk_header_fed_slowly(self):
        """$2000000000 then 1 KiB every 20 ms: refused at its first byte
        (SET cannot get a bulk string), not buffered."""
        srv = self.chaos("huge")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "ProtocolError", "a bulk string ('$')")

    def test_endless_status_line(self):
        srv = self.chaos("reply:+" + "x" * 5000)
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "ProtocolError", "a line over 4096 bytes")

    def test_slow_drip_ends_at_the_exchange_deadline(self):
        # a byte every 150 ms: never 500 ms (timeoutMs) without progress, but
        # the exchange has timeoutMs + 1 ms per 10 kB in all
        srv = self.chaos("drip")
        rc, log, failed = self.run_one(srv)
        self.assertAllFailed(rc, log, failed, "Timeout", "did not end in time")

    def test_broken_and_noisy_replies(self):
        for behaviour, phrase in (("reset", "ConnectionLost"),
                                  ("halffin", "closed by the server"),
                                  ("garbage", "ProtocolError"),
                                  ("empty", "ProtocolError"),
                                  ("silent", "no reply from 127.0.0.1")):
            with self.subTest(behaviour=behaviour):
                srv = self.chaos(behaviour)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, phrase)
                srv = self.chaos(behaviour, bad=1)
                rc, log, failed = self.run_one(srv)
                self.assertAllDelivered(rc, log, failed, srv)


class MisbehavingServerOnDel(RedisChaosCase):
    """deleteOnRemove against tests/servers/cache_chaos.py: KEYS come as
    DynamoDB REMOVE records (sequence numbers 1000...), each a DEL, which
    counts as done only on its own :0 or :1, in its place. Every other
    answer leaves the record reported failed (exit 1), or resent to
    success."""

    def mapping(self, srv, **opts):
        return super().mapping(srv, source=harness.DDB_SOURCE, convertDDB=True,
                               deleteOnRemove=True, **opts)

    def event(self):
        table = DdbTable()
        return table.event([("REMOVE", k, 0, None) for k in self.KEYS])

    def assertAllDeleted(self, rc, log, failed, srv):
        self.assertEqual(rc, 0, log)
        self.assertEqual(failed, [], log)
        self.assertIn("%d delivered, 0 failed" % len(self.KEYS), log)
        for k in self.KEYS:
            self.assertNotIn(("%s|0" % k).encode(), srv.stored)

    def preload(self, srv):
        for k in self.KEYS[:3]:  # three there (:1), two not (:0)
            srv.stored[("%s|0" % k).encode()] = b"{}"

    def test_honest_counts_confirm(self):
        srv = self.chaos("ok")
        self.preload(srv)
        srv.stored[b"other|0"] = b"{}"
        rc, log, failed = self.run_one(srv)
        self.assertAllDeleted(rc, log, failed, srv)
        self.assertIn(b"other|0", srv.stored)
        self.assertEqual(srv.data_commands, len(self.KEYS))

    def test_answers_a_del_cannot_get(self):
        """A status (+OK included: a SET's answer), a count other than 0
        or 1, a bulk string, a nil, an array, RESP3 types: a protocol
        error, never a confirmation."""
        for reply in ("+OK", "+QUEUED", ":2", ":-1", ":01", "$1\r\n1", "$-1",
                      "*1\r\n:1", "_", "#t", ",1", "+PONG"):
            with self.subTest(reply=reply):
                srv = self.chaos("reply:" + reply)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, "ProtocolError")
                self.assertGreater(srv.connections, 1)  # dropped, resent

    def test_error_replies_fail_the_records(self):
        self.assertErrorRepliesFail((("-ERR something", "ERR", 1),
                                     ("-NOPERM this user has no permissions to run the "
                                      "'del' command", "NOPERM", 1),
                                     ("-OOM command not allowed", "OOM", 4)))

    def test_extra_early_and_missing_replies(self):
        for behaviour, phrase in (("extra", "out of step"),
                                  ("early", "ProtocolError"),
                                  ("silent", "no reply from 127.0.0.1"),
                                  ("reset", "ConnectionLost")):
            with self.subTest(behaviour=behaviour):
                srv = self.chaos(behaviour)
                self.preload(srv)
                rc, log, failed = self.run_one(srv)
                self.assertAllFailed(rc, log, failed, phrase)
                srv = self.chaos(behaviour, bad=1)
                self.preload(srv)
                rc, log, failed = self.run_one(srv)
                self.assertAllDeleted(rc, log, failed, srv)

    def test_resent_del_never_lands_after_a_later_insert(self):
        """REMOVE k then INSERT k in one batch of a parallel target; the DEL
        gets -OOM once (retryable). The INSERT that went through is resent
        after it (OrderKept), so k ends set, as in the table; the record of
        another key is not resent."""
        table = DdbTable()
        table.items["k|0"] = {"pk": "k", "sk": 0, "v": "old"}
        ev = table.event([("REMOVE", "k", 0, None), ("INSERT", "k", 0, {"v": "new"}),
                          ("INSERT", "j", 0, {"v": "j"})])
        srv = self.chaos("oomat:0")
        srv.stored[b"k|0"] = b"{}"
        rc, log, failed, _, _ = invoke_measured(harness, self.dir, [self.mapping(srv)], ev,
                                                env=FAST)
        self.assertEqual(rc, 0, log)
        self.assertEqual(failed, [], log)
        # the DEL and the INSERT after it on its key are resent; j is not
        self.assertIn("2 of 3 messages to redis", log)
        self.assertIn("3 delivered, 0 failed", log)
        self.assertEqual(json.loads(srv.stored[b"k|0"]), table.items["k|0"])
        self.assertEqual(json.loads(srv.stored[b"j|0"]), table.items["j|0"])
        # DEL k (OOM), SET k, SET j; then DEL k, SET k again: j is not resent
        self.assertEqual(srv.data_commands, 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
