"""Shared helpers for the integration tests (run with /usr/bin/python3).

Starts the servers a test needs on loopback ports (each is stopped when the
test ends, and exits by itself if the test process dies), runs the fanout
binary, and builds events. Standard library, plus botocore (Debian's
python3-botocore) where a test reads back from an emulator.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from http.server import ThreadingHTTPServer

BUILD = os.environ.get("FANOUT_BUILD_DIR", "build")
SOURCE = os.environ.get("FANOUT_SOURCE_DIR", ".")
TESTS = os.environ.get("FANOUT_TESTS_DIR", os.path.join(SOURCE, "tests"))
DATA = os.environ.get("FANOUT_TESTDATA", os.path.join(TESTS, "data"))
SERVERS = os.path.join(TESTS, "servers")  # every test server's script
NODE_BIN = os.path.join(TESTS, "node", "node_modules", ".bin")
NODE = shutil.which("node") or "/usr/bin/node"
FANOUT = os.path.join(BUILD, "engine", "fanout")
PYTHON = "/usr/bin/python3"

# The credentials every test signs with (the servers know them).
ACCESS_KEY = "AKIDFANOUTTEST000001"
SECRET_KEY = "fanout-test-secret-key-0000000000000000"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def plugin_path():
    """Every plugin built in this tree, then the test plugins."""
    dirs = []
    plugins = os.path.join(BUILD, "plugins")
    if os.path.isdir(plugins):
        for name in sorted(os.listdir(plugins)):
            if os.path.isdir(os.path.join(plugins, name)):
                dirs.append(os.path.join(plugins, name))
    dirs.append(os.path.join(BUILD, "tests", "plugins"))
    return ":".join(dirs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on port %d after %.0f s" % (port, timeout))


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL after `timeout` s; waits for the end."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """A process started for a test; stop() (or the context manager) ends it."""

    def __init__(self, argv, port=None, port_from_stdout=False, env=None, cwd=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE if port_from_stdout
                                     else subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=e, cwd=cwd)
        if port_from_stdout:
            line = self.proc.stdout.readline().decode().strip()
            if not line.isdigit():
                self.stop()
                raise RuntimeError("%s did not print its port: %r" % (argv[0], line))
            port = int(line)
        self.port = port
        wait_port(port, proc=self.proc)
        self.url = "http://127.0.0.1:%d" % port

    def stop(self):
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class InProcessServer:
    """A fake endpoint served by threads of the test process: serve(Handler)
    binds a free loopback port (.server, .url), stop() ends it."""

    def serve(self, handler, poll_interval=0.5):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": poll_interval}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _guard(max_lifetime=600):
    """The options that end a test server when this process is gone or
    after max_lifetime s (tests/servers/serve.py)."""
    return ["--parent-pid", str(os.getpid()), "--max-lifetime", str(max_lifetime)]


class AwsService(Server):
    """tests/servers/aws_service.py: SNS, Firehose, Lambda, IoT, OpenSearch,
    every request's signature checked with botocore."""

    def __init__(self, tmpdir, resources=None, extra_credentials=(), extra_args=()):
        creds = os.path.join(tmpdir, "aws-credentials.json")
        with open(creds, "w") as f:
            json.dump([{"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}] +
                      list(extra_credentials), f)
        argv = [PYTHON, os.path.join(SERVERS, "aws_service.py"), "--port", "0",
                "--credentials", creds] + _guard()
        if resources is not None:
            res = os.path.join(tmpdir, "aws-resources.json")
            with open(res, "w") as f:
                json.dump(resources, f)
            argv += ["--resources", res]
        super().__init__(argv + list(extra_args), port_from_stdout=True)

    def _json(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
        return json.loads(data) if data else None

    def received(self, service, target, min_count=0, timeout_ms=5000):
        from urllib.parse import urlencode
        params = {"service": service, "min": min_count, "timeout_ms": timeout_ms}
        if target is not None:
            params["target"] = target
        q = urlencode(params)
        return self._json("GET", "/__received?" + q)

    def faults(self, rules):
        return self._json("POST", "/__faults", rules)

    def reset(self):
        return self._json("POST", "/__reset", {})

    def add_credentials(self, creds):
        return self._json("POST", "/__credentials", creds)

    def stats(self):
        return self._json("GET", "/__stats")


class StsServer(Server):
    """tests/servers/sts_server.py, signed to with the base key. Every key
    AssumeRole issues is registered (in the role ARN's account) with each
    URL of register_with (AwsService.url) before fanout gets it, so those
    services accept it. Point AWS_ENDPOINT_URL_STS at .url."""

    def __init__(self, register_with=(), extra_args=(), max_lifetime=600):
        argv = [PYTHON, os.path.join(SERVERS, "sts_server.py"), "--port", "0",
                "--base-key", "%s:%s" % (ACCESS_KEY, SECRET_KEY)] + _guard(max_lifetime)
        for url in register_with:
            argv += ["--register-with", url]
        super().__init__(argv + list(extra_args), port_from_stdout=True)

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.load(r)

    @property
    def issued(self):
        """The key ids AssumeRole issued, in order."""
        return [k["accessKeyId"] for k in self.stats()["issued_keys"]
                if k["source"].startswith("assume-role:")]


class SqsServer(Server):
    """local-aws-sqs (npm) through tests/servers/sqs_server.js: GET /__calls
    lists the calls."""

    def __init__(self, max_lifetime=600):
        super().__init__([NODE, os.path.join(SERVERS, "sqs_server.js"), "--port", "0"] +
                         _guard(max_lifetime), port_from_stdout=True)

    def calls(self, target=None, queue_url=None):
        with urllib.request.urlopen(self.url + "/__calls", timeout=10) as r:
            out = json.loads(r.read())
        return [c for c in out if (target is None or c["target"] == target) and
                (queue_url is None or c["queueUrl"] == queue_url)]

    def answer_queue_url(self, url):
        """Every GetQueueUrl answers `url` from now on (None: the
        emulator's own answer again, and the calls forgotten)."""
        path, body = ("/__queue_url", url.encode()) if url is not None else ("/__reset", b"")
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def runtime_emulator(events_file, output, max_lifetime=60):
    """tests/servers/runtime_emulator.py serving the events of events_file
    until each is answered (--exit-when-empty), recording the calls in
    `output`. The process; its first stdout line is the port."""
    return subprocess.Popen([PYTHON, os.path.join(SERVERS, "runtime_emulator.py"),
                             "--events", events_file, "--output", output, "--exit-when-empty"]
                            + _guard(max_lifetime), stdout=subprocess.PIPE)


def run_bootstrap(directory, events, env):
    """The fanout binary as Lambda's bootstrap against a runtime emulator
    serving `events` (files in `directory`), with `env` plus
    AWS_LAMBDA_RUNTIME_API. Returns (the completed process, the posts the
    emulator recorded: response, error, init_error)."""
    evfile = os.path.join(directory, "events.json")
    out = os.path.join(directory, "api.jsonl")
    if os.path.exists(out):
        os.unlink(out)
    with open(evfile, "w") as f:
        json.dump(events, f)
    emu = runtime_emulator(evfile, out)
    try:
        port = emu.stdout.readline().decode().strip()
        e = dict(env)
        e["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:" + port
        r = subprocess.run([FANOUT], env=e, capture_output=True, timeout=60)
    finally:
        emu.kill()
        emu.wait()
        emu.stdout.close()
    with open(out) as f:
        calls = [json.loads(line) for line in f]
    return r, [c for c in calls if c["kind"] in ("response", "error", "init_error")]


class Kinesalite(Server):
    """kinesalite (npm): a Kinesis emulator, in memory."""

    def __init__(self):
        port = free_port()
        super().__init__([os.path.join(NODE_BIN, "kinesalite"), "--port", str(port),
                          "--createStreamMs", "0", "--deleteStreamMs", "0",
                          "--updateStreamMs", "0", "--shardLimit", "100"], port=port)


class Dynalite(Server):
    """dynalite (npm): a DynamoDB emulator, in memory."""

    def __init__(self):
        port = free_port()
        super().__init__([os.path.join(NODE_BIN, "dynalite"), "--port", str(port),
                          "--createTableMs", "0", "--deleteTableMs", "0",
                          "--updateTableMs", "0"], port=port)


def botocore_client(service, endpoint_url, region=REGION):
    """A botocore client for reading back from an emulator."""
    import botocore.session
    from botocore.config import Config
    session = botocore.session.get_session()
    return session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                 aws_access_key_id=ACCESS_KEY,
                                 aws_secret_access_key=SECRET_KEY,
                                 config=Config(retries={"max_attempts": 1}))


def aws_env(**endpoints):
    """Environment for fanout talking to loopback AWS endpoints:
    aws_env(KINESIS="http://127.0.0.1:1234", SNS=...)."""
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "FANOUT_AWS_RETRY_BASE_MS": "1", "FANOUT_AWS_RETRY_CAP_MS": "20",
           "FANOUT_RETRY_BASE_MS": "1", "FANOUT_RETRY_CAP_MS": "20"}
    for name, url in endpoints.items():
        env["AWS_ENDPOINT_URL_" + name.upper()] = url
    return env


def run_fanout(args, env=None, stdin=None, cwd=None, timeout=120):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("AWS_") or k in ("FANOUT_CONFIG", "FANOUT_TABLE"):
            del e[k]
    # Never the real EC2 instance metadata service (the chain's last step).
    e["AWS_EC2_METADATA_DISABLED"] = "true"
    e.update({"FANOUT_PLUGIN_PATH": plugin_path(), "FANOUT_LOG_FORMAT": "text"})
    if env:
        e.update(env)
    return subprocess.run([FANOUT] + list(args), input=stdin, capture_output=True, env=e,
                          cwd=cwd, timeout=timeout)


def invoke(tmpdir, mappings, event, env=None):
    """fanout invoke with these mappings (list of dicts) and event (dict or a
    path). Returns (CompletedProcess, failed sequence numbers)."""
    cfg = os.path.join(tmpdir, "mappings.json")
    with open(cfg, "w") as f:
        json.dump(mappings, f)
    resp = os.path.join(tmpdir, "response.json")
    if isinstance(event, str):
        args, stdin = ["--event", event], None
    else:
        args, stdin = ["--event", "-"], json.dumps(event).encode()
    r = run_fanout(["invoke", "--config", cfg, "--response", resp] + args, env=env, stdin=stdin)
    failed = []
    if os.path.exists(resp):
        with open(resp) as f:
            failed = [x["itemIdentifier"] for x in json.load(f)["batchItemFailures"]]
    return r, failed


def validate(tmpdir, mappings, env=None):
    """fanout validate of these mappings: (returncode, stdout + stderr)."""
    cfg = os.path.join(tmpdir, "validate.json")
    with open(cfg, "w") as f:
        json.dump(mappings, f)
    r = run_fanout(["validate", "--config", cfg], env=env)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


class AwsServiceCase(unittest.TestCase):
    """Base of the tests against one AwsService for the class, started with
    RESOURCES, reset before each test (self.aws); each test has a fresh
    self.tmp. env() points the aws_env names of ENDPOINTS (e.g.
    ("FIREHOSE",)) at it."""

    RESOURCES = None
    ENDPOINTS = ()

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = TempDir()
        cls.aws = AwsService(cls.tmpdir.path, resources=cls.RESOURCES)

    @classmethod
    def tearDownClass(cls):
        cls.aws.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.tmp = TempDir()
        self.aws.reset()

    def tearDown(self):
        self.tmp.cleanup()

    def env(self, **extra):
        e = aws_env(**{name: self.aws.url for name in self.ENDPOINTS})
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def invoke(self, mappings, event, **env):
        return invoke(self.tmp.path, mappings, event, env=self.env(**env))


KINESIS_SOURCE = "arn:aws:kinesis:us-east-1:123456789012:stream/source"
DDB_SOURCE = ("arn:aws:dynamodb:us-east-1:123456789012:table/source/stream/"
              "2026-01-01T00:00:00.000")


def mapping(id_, type_, destination, source=KINESIS_SOURCE, **extra):
    m = {"sourceArn": source, "id": id_, "type": type_, "destination": destination,
         "active": True}
    m.update(extra)
    return m


def kinesis_event(records, arn=KINESIS_SOURCE):
    """records: (partition key, bytes) pairs; sequence numbers 1000, 1001..."""
    out = []
    for i, (pk, data) in enumerate(records):
        seq = str(1000 + i)
        out.append({"eventSource": "aws:kinesis", "eventSourceARN": arn,
                    "awsRegion": REGION, "eventID": "shardId-000000000000:" + seq,
                    "eventName": "aws:kinesis:record", "eventVersion": "1.0",
                    "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": pk,
                                "sequenceNumber": seq,
                                "data": base64.b64encode(data).decode(),
                                "approximateArrivalTimestamp": 1545084650.987}})
    return {"Records": out}


def sample_event(name):
    return os.path.join(DATA, "events", name)


def cache_chaos():
    """The module tests/servers/cache_chaos.py."""
    if SERVERS not in sys.path:
        sys.path.insert(0, SERVERS)
    import cache_chaos as module
    return module


class CacheChaosCase(unittest.TestCase):
    """Base of a cache plugin's MisbehavingServer tests: ChaosServer (of
    tests/servers/cache_chaos.py) plays a KIND node that answers the
    plugin's commands wrongly, and run_one() sends KEYS to it with `fanout
    invoke`, checking the process ends without a signal or a sanitizer
    report, in MAX_SECONDS and MAX_RSS_KIB. A subclass sets KIND and ENV
    and writes mapping(server, **options) (and event() for another source
    than KINESIS_SOURCE)."""

    KIND = None
    ENV = None
    KEYS = ["k%d" % i for i in range(5)]
    # bounds for every run: the engine's 4 attempts of at most ~0.6 s each
    MAX_SECONDS = 15
    MAX_RSS_KIB = 64 * 1024  # about 11 MiB measured, 32 MiB under ASan

    def setUp(self):
        self.tmp = TempDir()
        self.dir = self.tmp.path
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        self.tmp.cleanup()

    def chaos(self, behaviour, bad=None, **kw):
        s = cache_chaos().ChaosServer(self.KIND, behaviour, bad, **kw)
        self.servers.append(s)
        return s

    def mapping(self, srv, **opts):
        raise NotImplementedError

    def event(self):
        """What run_one sends: KEYS as Kinesis records (sequence numbers
        1000, 1001, ...), from the source mapping() names."""
        return kinesis_event([(k, k.encode()) for k in self.KEYS])

    def run_one(self, srv, **opts):
        ev = self.event()
        rc, log, failed, rss, took = cache_chaos().invoke_measured(
            sys.modules[__name__], self.dir, [self.mapping(srv, **opts)], ev, env=self.ENV)
        self.assertGreaterEqual(rc, 0, "killed by a signal:\n" + log)
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error:", log)
        self.assertLess(took, self.MAX_SECONDS, log)
        self.assertLess(rss, self.MAX_RSS_KIB, log)
        return rc, log, failed

    def assertAllFailed(self, rc, log, failed, *phrases):
        self.assertEqual(rc, 1, log)
        self.assertEqual(sorted(failed), [str(1000 + i) for i in range(len(self.KEYS))], log)
        self.assertIn("0 delivered, %d failed" % len(self.KEYS), log)
        for p in phrases:
            self.assertIn(p, log)

    def assertAllDelivered(self, rc, log, failed, srv):
        self.assertEqual(rc, 0, log)
        self.assertEqual(failed, [], log)
        self.assertIn("%d delivered, 0 failed" % len(self.KEYS), log)
        for k in self.KEYS:
            self.assertEqual(srv.stored.get(k.encode()), k.encode())


class TempDir:
    def __init__(self):
        self._t = tempfile.TemporaryDirectory()
        self.path = self._t.name

    def cleanup(self):
        self._t.cleanup()


if __name__ == "__main__":
    sys.exit("harness.py is a module for the integration tests")
