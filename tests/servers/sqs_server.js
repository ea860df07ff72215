// local-aws-sqs (npm) on a loopback port, for the sqs plugin's tests.
//
// local-aws-sqs is a library: this script serves its request handler on
// 127.0.0.1 and prints the port it bound on the first line of stdout. It
// also records every API call it passes on (the emulator itself keeps no
// log and checks no signature), so tests can count SendMessageBatch calls
// and see how each was signed:
//   GET  /__calls   [{"target", "contentType", "accessKeyId", "region",
//                     "service", "securityToken", "queueUrl", "entries",
//                     "bytes"}] in arrival order
//   POST /__reset   forget the calls (and the QueueUrl below)
//   POST /__queue_url  the body (a URL) is the QueueUrl every GetQueueUrl
//                   answers from now on, whatever queue was asked for: an
//                   answer for another queue
// Options: --port N (0: any), --parent-pid PID (exit when it is gone),
// --max-lifetime S.
"use strict";

const http = require("http");
const path = require("path");

const { createRequestHandler } = require(
  path.join(__dirname, "..", "node", "node_modules", "local-aws-sqs"));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const port = Number(arg("--port", "0"));
const parentPid = Number(arg("--parent-pid", "0"));
const maxLifetime = Number(arg("--max-lifetime", "0"));

const { service, requestHandler } = createRequestHandler({
  port,
  hostname: "127.0.0.1",
  emulateQueueCreationLifecycle: false,
  emulateLazyQueues: false,
});

let calls = [];
let queueUrl = null;

function credentialScope(auth) {
  // AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, ...
  const m = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth || "");
  return m ? { accessKeyId: m[1], region: m[3], service: m[4] } : {};
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/__")) {
    const body = [];
    req.on("data", (c) => body.push(c));
    req.on("end", () => {
      let out = null;
      if (req.method === "GET" && req.url === "/__calls") out = calls;
      else if (req.method === "POST" && req.url === "/__reset") {
        calls = [];
        queueUrl = null;
        out = {};
      } else if (req.method === "POST" && req.url === "/__queue_url") {
        queueUrl = Buffer.concat(body).toString("utf8");
        out = {};
      }
      res.writeHead(out ? 200 : 404, { "Content-Type": "application/json" });
      res.end(JSON.stringify(out || { message: "unknown control path" }));
    });
    return;
  }
  if (queueUrl !== null && req.headers["x-amz-target"] === "AmazonSQS.GetQueueUrl") {
    req.resume();
    req.on("end", () => {
      calls.push({ target: "AmazonSQS.GetQueueUrl", queueUrl: queueUrl });
      res.writeHead(200, { "Content-Type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify({ QueueUrl: queueUrl }));
    });
    return;
  }
  const call = Object.assign({
    target: req.headers["x-amz-target"] || null,
    contentType: req.headers["content-type"] || null,
    securityToken: req.headers["x-amz-security-token"] ? true : false,
    queueUrl: null, entries: null, bytes: 0,
  }, credentialScope(req.headers["authorization"]));
  const chunks = [];
  // A second listener sees the same chunks as the emulator's own.
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    call.bytes = body.length;
    try {
      const j = JSON.parse(body.toString("utf8"));
      call.queueUrl = j.QueueUrl || null;
      call.entries = Array.isArray(j.Entries) ? j.Entries.length : (j.MessageBody !== undefined ? 1 : null);
    } catch (e) {
      // Query protocol (botocore reading back): the Action names the call
      const m = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString("utf8"));
      if (m) call.target = "Query." + m[1];
    }
    calls.push(call);
  });
  requestHandler(req, res);
});

server.listen(port, "127.0.0.1", () => {
  service.PORT = server.address().port;
  process.stdout.write(server.address().port + "\n");
});

const started = Date.now();
setInterval(() => {
  if (parentPid) {
    try {
      process.kill(parentPid, 0);
    } catch (e) {
      process.exit(2);
    }
  }
  if (maxLifetime && Date.now() - started > maxLifetime * 1000) process.exit(3);
}, 200).unref();

process.on("SIGTERM", () => process.exit(0));
