"""Load only what the event needs (issue 14, cold start): the fanout binary
does not link libcurl, libssl or libcrypto (DT_NEEDED) but names them in
its .note.dlopen note, and neither `fanout invoke` nor the Lambda Runtime
API loop loads them for an event whose targets make no AWS call; an AWS
target loads libcrypto (SigV4, checked by the test server) and works, on
connections of fanout's own: libcurl is loaded only when a proxy applies
(and libssl only for HTTPS, tests/unit/test_http.c). The dynamic loader's
own trace (LD_DEBUG=files) says what was loaded. No timing here:
bench/coldstart.py measures. Run by meson with /usr/bin/python3."""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, FANOUT, AwsService, aws_env, invoke, kinesis_event,  # noqa: E402
                     mapping, run_bootstrap)

HEAVY = ("libcurl.so.4", "libcrypto.so.3", "libssl.so.3")
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def loaded(stderr):
    """The libraries the dynamic loader opened, from LD_DEBUG=files lines."""
    return set(re.findall(r"file=(\S+) \[0\];  (?:needed|dynamically loaded) by",
                          stderr.decode(errors="replace")))


def file_mapping(path):
    return {"sourceArn": ARN, "id": "out", "type": "file", "destination": path,
            "active": True}


def event(n):
    return {"Records": [{
        "eventSource": "aws:kinesis", "eventSourceARN": ARN, "awsRegion": "us-east-1",
        "kinesis": {"partitionKey": "k%d" % i, "sequenceNumber": str(100 + i),
                    "data": base64.b64encode(b"r%d" % i).decode()}} for i in range(n)]}


class LeanStart(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_binary_does_not_link_them(self):
        dyn = subprocess.run(["readelf", "-d", FANOUT], capture_output=True, text=True,
                             check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
        self.assertTrue(needed)
        for lib in HEAVY:
            self.assertNotIn(lib, needed)
        notes = subprocess.run(["readelf", "-p", ".note.dlopen", FANOUT],
                               capture_output=True, text=True, check=True).stdout
        named = [s for m in re.finditer(r"(\[\{.*\}\])\s*$", notes, re.M)
                 for e in json.loads(m.group(1)) for s in e["soname"]]
        self.assertEqual(sorted(named), sorted(HEAVY))

    def test_invoke_file_target(self):
        out = os.path.join(self.dir, "out.jsonl")
        r, failed = invoke(self.dir, [file_mapping(out)], event(3),
                           env={"LD_DEBUG": "files"})
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        self.assertEqual(failed, [])
        with open(out) as f:
            self.assertEqual(len(f.read().splitlines()), 3)
        libs = loaded(r.stderr)
        self.assertIn("libjansson.so.4", libs)  # the trace is there
        # the loader opens a plugin by descriptor, once checked
        self.assertTrue(any(lib.startswith("/proc/self/fd/") for lib in libs), libs)
        for lib in HEAVY:
            self.assertNotIn(lib, libs)

    def test_runtime_loop_file_target(self):
        out = os.path.join(self.dir, "out.jsonl")
        cfg = os.path.join(self.dir, "mappings.json")
        with open(cfg, "w") as f:
            json.dump([file_mapping(out)], f)
        env = dict(os.environ, FANOUT_CONFIG=cfg, LD_DEBUG="files",
                   FANOUT_PLUGIN_PATH=os.path.join(BUILD, "plugins", "file"))
        r, posts = run_bootstrap(self.dir, [{"event": event(2)}, {"event": event(1)}], env)
        self.assertEqual([p["kind"] for p in posts], ["response", "response"],
                         r.stderr.decode()[-2000:])
        with open(out) as f:
            self.assertEqual(len(f.read().splitlines()), 3)
        for lib in HEAVY:
            self.assertNotIn(lib, loaded(r.stderr))


class AwsTargetLoadsThem(unittest.TestCase):
    def _sns(self, extra_env):
        topic = "arn:aws:sns:us-east-1:123456789012:lean"
        saved = {k: os.environ.pop(k) for k in PROXY_VARS if k in os.environ}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                with AwsService(tmp, resources={"sns": [topic]}) as svc:
                    env = aws_env(sns=svc.url)
                    env["LD_DEBUG"] = "files"
                    env.update(extra_env)
                    r, failed = invoke(tmp, [mapping("n", "sns", topic, collapse="none")],
                                       kinesis_event([("k", b"a"), ("k", b"b")]), env=env)
                    self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
                    self.assertEqual(failed, [])
                    got = svc.received("sns", topic, 2)
                    self.assertEqual(sorted(e["message"] for e in got), ["a", "b"])
                    return loaded(r.stderr)
        finally:
            os.environ.update(saved)

    def test_sns_target(self):
        # no proxy: fanout's own connections, libcurl never loaded (and no
        # libssl for an http endpoint)
        libs = self._sns({})
        self.assertIn("libcrypto.so.3", libs)
        self.assertNotIn("libcurl.so.4", libs)
        self.assertNotIn("libssl.so.3", libs)

    def test_sns_target_through_proxy_settings(self):
        # a proxy set (loopback excepted by no_proxy, so the request still
        # goes straight): the request takes libcurl, which is loaded then
        libs = self._sns({"http_proxy": "http://fanout-dead-proxy.invalid:8080",
                          "no_proxy": "127.0.0.1"})
        self.assertIn("libcrypto.so.3", libs)
        self.assertIn("libcurl.so.4", libs)


if __name__ == "__main__":
    unittest.main()
