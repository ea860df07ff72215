#!/usr/bin/python3
"""Loopback test endpoints for the credentials tests: the IAM Identity Center
portal (SSO) and the EC2 instance metadata service (IMDSv2).

It listens on 127.0.0.1 and prints the port it bound on the first line of
stdout (flushed), then serves:

  GET /federation/credentials?account_id=A&role_name=R
        the SSO portal's GetRoleCredentials: the header
        x-amz-sso_bearer_token must equal --sso-token (else 401
        UnauthorizedException, JSON {"message"}); answers
        {"roleCredentials": {accessKeyId, secretAccessKey, sessionToken,
        expiration (epoch ms)}} with the --sso-key pair.
  PUT /latest/api/token
        IMDSv2 session token; needs X-aws-ec2-metadata-token-ttl-seconds
        (1..21600, else 400). With --imds-v1-only it answers 404 (as an
        IMDSv1-only service would; the client then goes on without a token).
  GET /latest/meta-data/iam/security-credentials/
        the role name (--imds-role); with --imds-no-role 404.
  GET /latest/meta-data/iam/security-credentials/<role>
        {"Code": "Success", AccessKeyId, SecretAccessKey, Token, Expiration}
        with the --imds-key triple.
        The metadata GETs need the token from PUT in X-aws-ec2-metadata-token
        (401 otherwise) unless --imds-v1-only.
  GET /stats
        JSON counters: sso {requests, unauthorized, last}, imds
        {token_requests, requests, unauthorized, tokens_seen}.

Keys given here are meant to be --base-key of tests/servers/sts_server.py, so
a role assumed with them (credential_source, source_profile) verifies.
"""

import datetime
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402


def iso8601(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fanout-test-sso-imds"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        if not isinstance(body, bytes):
            body = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _count(self, group, key):
        st = self.server.stats
        with self.server.lock:
            st[group][key] = st[group].get(key, 0) + 1

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        a = self.server.args
        if urlsplit(self.path).path != "/latest/api/token":
            return self._send(404, "not found", "text/plain")
        self._count("imds", "token_requests")
        if a.imds_v1_only:
            return self._send(404, "not found", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self._send(400, "bad ttl", "text/plain")
        tok = "imds-" + secrets.token_hex(24)
        with self.server.lock:
            self.server.tokens.add(tok)
        self._send(200, tok, "text/plain")

    def do_GET(self):
        a = self.server.args
        u = urlsplit(self.path)
        if u.path == "/stats":
            with self.server.lock:
                return self._send(200, self.server.stats)
        if u.path == "/federation/credentials":
            self._count("sso", "requests")
            q = parse_qs(u.query)
            with self.server.lock:
                self.server.stats["sso"]["last"] = {
                    "account_id": q.get("account_id", [""])[0],
                    "role_name": q.get("role_name", [""])[0]}
            if self.headers.get("x-amz-sso_bearer_token") != a.sso_token:
                self._count("sso", "unauthorized")
                return self._send(401, {"message": "Session token not found or invalid"})
            akid, secret, token = a.sso_key.split(":", 2)
            return self._send(200, {"roleCredentials": {
                "accessKeyId": akid, "secretAccessKey": secret, "sessionToken": token,
                "expiration": int((time.time() + 3600) * 1000)}})
        prefix = "/latest/meta-data/iam/security-credentials/"
        if u.path.startswith(prefix):
            self._count("imds", "requests")
            tok = self.headers.get("X-aws-ec2-metadata-token")
            if tok:
                self._count("imds", "tokens_seen")
            if not a.imds_v1_only and tok not in self.server.tokens:
                self._count("imds", "unauthorized")
                return self._send(401, "", "text/plain")
            rest = u.path[len(prefix):]
            if a.imds_no_role:
                return self._send(404, "not found", "text/plain")
            if rest == "":
                return self._send(200, a.imds_role + "\n", "text/plain")
            if rest != a.imds_role:
                return self._send(404, "not found", "text/plain")
            akid, secret, token = a.imds_key.split(":", 2)
            now = time.time()
            return self._send(200, {"Code": "Success", "LastUpdated": iso8601(now),
                                    "Type": "AWS-HMAC", "AccessKeyId": akid,
                                    "SecretAccessKey": secret, "Token": token,
                                    "Expiration": iso8601(now + 3600)})
        self._send(404, "not found", "text/plain")


def main():
    ap = serve.arguments(__doc__, port=False)
    ap.add_argument("--sso-token", default="fanout-sso-access-token")
    ap.add_argument("--sso-key", default="ASIAFANOUTSSOKEY0001:ssoSecret/0123456789abcdef:ssoToken")
    ap.add_argument("--imds-key",
                    default="ASIAFANOUTIMDSKEY001:imdsSecret/0123456789abcdef:imdsToken")
    ap.add_argument("--imds-role", default="fanout-instance-role")
    ap.add_argument("--imds-no-role", action="store_true")
    ap.add_argument("--imds-v1-only", action="store_true")
    args = ap.parse_args()
    server = serve.Server(("127.0.0.1", 0), Handler)
    server.args = args
    server.lock = threading.Lock()
    server.tokens = set()
    server.stats = {"sso": {"requests": 0, "unauthorized": 0, "last": None},
                    "imds": {"token_requests": 0, "requests": 0, "unauthorized": 0,
                             "tokens_seen": 0}}
    serve.run(server, args, None)


if __name__ == "__main__":
    main()
