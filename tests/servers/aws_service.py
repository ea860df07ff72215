#!/usr/bin/python3
"""Loopback test endpoint for SNS, Firehose, Lambda, IoT, OpenSearch, EventBridge,
IAM and STS, and a validating forward to DynamoDB and Kinesis emulators.

One HTTP/1.1 server on 127.0.0.1 (threaded, keep-alive, TCP_NODELAY,
Content-Length on every answer, Expect: 100-continue and chunked bodies
taken) answering the data-plane calls of fanout's destination plugins with
the shapes of the services' API references, and the control-plane lookups
`fanout register` makes for short names (as aws-lambda-fanout's CLI did),
and Lambda's control plane (functions, layers, event source mappings) for
the deployment commands.
One module a service in tests/servers/aws/, whose docstrings give the
protocol, operations, targets, received fields, resources and fault shapes:
  firehose.py    Firehose PutRecord, PutRecordBatch, DescribeDeliveryStream
  sns.py         SNS Publish, PublishBatch, ListTopics
  lambda_.py     Lambda Invoke, GetFunction (of the "lambda" resources)
  lambda_ctl.py  Lambda's control plane ("lambda_ctl"): CreateFunction,
                 GetFunction, GetFunctionConfiguration, UpdateFunctionCode,
                 UpdateFunctionConfiguration, DeleteFunction, ListFunctions,
                 tags; PublishLayerVersion, GetLayerVersion(ByArn),
                 ListLayerVersions, ListLayers, DeleteLayerVersion; event
                 source mappings (Create, Get, List, Update, Delete), with
                 Lambda's states (Pending/Active, LastUpdateStatus, mapping
                 Creating/Enabled/...) advanced by the Get calls
  iot.py         IoT Data Plane Publish ("iot"), DescribeEndpoint ("iot_control")
  es.py          OpenSearch _bulk and GET / ("opensearch"), DescribeDomain
                 and DescribeElasticsearchDomain ("es_control")
  elasticache.py ElastiCache DescribeCacheClusters, DescribeReplicationGroups
  eventbridge.py EventBridge PutEvents (for sdk/examples/eventbridge)
  iam.py         IAM roles, inline and managed policies, tags (fanout deploy)
  sts.py         STS GetCallerIdentity (AssumeRole: tests/servers/sts_server.py)
  forward.py     DynamoDB and Kinesis, forwarded to emulators (--forward)
aws/__init__.py says how a service module is written and registered;
aws/core.py is what they share.

Models. Every signed request of a service with a botocore model (all but
the OpenSearch data plane, which no model describes) is checked against
botocore's own service model (aws/model.py; model.check_request can be
called directly) before the module sees it: the operation is found by the
protocol (Query Action + Version, JSON X-Amz-Target, REST method + URI),
the input rebuilt from the request and checked with botocore's
ParamValidator (unknown members, missing required ones, types, minimums)
plus enums; a Query key that maps to no member is an error. A refused
request is answered 400 ValidationError (Query) / ValidationException
(JSON, REST-JSON) with botocore's report (InvalidAction for an unknown
Action or a wrong Version, UnknownOperationException for an unknown target
or route, SerializationException for a body that is not JSON, MissingAction
for a Query body that is not a form), listed in /__stats "model_errors"
({service, operation, errors}), logged on stderr and in the --log line
(model_errors), and takes no fault rule.

Signatures. Every service request must carry a SigV4 signature that
botocore reproduces: the request is rebuilt from what was received (method,
http://<Host as received><path as received>, the query's parameters decoded
so botocore encodes and sorts them as AWS canonicalises a query, the headers
named in SignedHeaders, the body) and signed by botocore.auth.SigV4Auth at
the request's X-Amz-Date with the secret this server knows for the key id;
the Authorization values must agree. The credential scope names the region
(recorded) and the signing name, which must be the service's (sns,
firehose, lambda, iotdata, es, events, ...). X-Amz-Date more than 15
minutes off, an unknown key, an X-Amz-Security-Token other than the key's
(or one sent for a key without one, or none for a key with one), an expired
key and a bad signature are answered 403 in the service's error shape (JSON
for EventBridge as for Firehose):
  kind                 Firehose/Lambda/IoT (JSON, x-amzn-ErrorType)  SNS (XML)
  bad signature/skew   InvalidSignatureException          SignatureDoesNotMatch
  unknown key, token   UnrecognizedClientException        InvalidClientTokenId
  expired key          ExpiredTokenException              ExpiredToken
  no Authorization     MissingAuthenticationTokenException MissingAuthenticationToken
  malformed, no date   IncompleteSignatureException       IncompleteSignature
OpenSearch answers 403 {"message": ...}. A mismatch message carries the
canonical request and string to sign botocore computed, as AWS does.

Control and inspection (no signature), JSON:
  GET    /__health
  GET    /__received?service=S[&target=T][&min=N&timeout_ms=MS]
         accepted entries in arrival order (waits up to timeout_ms for >= min).
         Every entry has service, operation, target, accessKeyId, region,
         accountId, requestId, time, seq, and the service's own fields.
  POST   /__reset        forget entries, fault rules, stats, OpenSearch docs
  POST   /__faults       add rules (an object, a list or {"rules": [...]})
  GET    /__faults       the rules with fired / remaining counts
  DELETE /__faults       drop every rule
  GET    /__stats        requests per service and operation and status,
                         auth failures by kind, faults fired (total, by kind,
                         by service), deliveries, rules
  POST   /__resources    add resources; GET /__resources
  POST   /__credentials  add signers (same JSON as --credentials)
  POST   /__lambda       lambda_ctl's options (pendingPolls, updatePolls,
                         esmPolls, roleDelayMs, strictRoles, failCreate,
                         failUpdate, pageSize, roles; see lambda_ctl.py);
                         GET /__lambda: them and what the store holds

IAM roles are kept per account until /__reset; state.shared["iam_roles"]
maps each live role's ARN to its creation time (for the Lambda module).

Resources (--resources FILE, POST /__resources): an object whose keys each
service module names ("firehose", "sns", "lambda", "es", "memcached",
"redis", "iotEndpoint"); lists, "*" = any.

Credentials (--credentials FILE, re-read when the file changes;
POST /__credentials): [{"accessKeyId", "secretAccessKey", "sessionToken"?,
"accountId"?, "expiration"? (ISO 8601 or epoch s)}] (AccessKeyId,
SecretAccessKey, SessionToken/Token, Expiration as AWS spells them also).

Fault rules: {"service", "kind", "target"? (default any), "operation"?,
"count"? (default 1; -1 forever), "skip"? (let N matching requests through
first), ...}. Each request takes the first live matching rule (in the order
added) plus every matching slow rule; partial rules match batch calls only.
Rules are consulted once the signature is good and the request passed
validation (a request that fails validation takes no rule).
  throttle  the service's throttling error (see its module); "status",
            "code", "message" (and "type" for OpenSearch) override.
  error500  the service's internal error; same overrides.
  partial   "every": N fails entries N, 2N, ... (1-based) or "indexes":
            [0-based, ...] of a batch call (Firehose PutRecordBatch, SNS
            PublishBatch, OpenSearch _bulk) with the service's entry error.
  slow      wait "delay_ms", then answer as usual
  reset     close the connection without an answer: "mode" "close" (FIN,
            default) or "rst" (RST)
  status    answer "status" with "body" (string or JSON), "headers",
            "contentType"
  deny      AWS's access-denied answer: Query services (iam, sts, sns,
            elasticache) 403 AccessDenied (Type Sender); JSON / REST-JSON
            ones 403 x-amzn-ErrorType AccessDeniedException {"Message": ...}
            (DynamoDB and Kinesis, as they answer: 400 {"__type":
            "[com.amazonaws.dynamodb.v20120810#]AccessDeniedException",
            "message": ...}). The message: "User: arn:aws:iam::ACCOUNT:user/
            fanout-test is not authorized to perform: PREFIX:Operation on
            resource: RESOURCE because no identity-based policy allows the
            PREFIX:Operation action" (PREFIX the IAM service prefix: iam,
            sts, lambda, sns, dynamodb, ...; RESOURCE the module's
            access_resource(): IAM the role's ARN, DynamoDB / Kinesis the
            table / stream ARN, else "*"); "resource" overrides RESOURCE,
            "message" the whole text.
  mangle    serve the request as usual (the records are stored), then
            change its 2xx answer into one that misbehaves: "ops", a list
            of {"op": ...} applied in order (or the rule itself is one op):
              set      "path" (dots; list indexes, -1 the last) to "value"
              delete   the key or element at "path"
              dup      insert a copy of the element at "path" after it
              swap     elements "i" and "j" of the list at "path"
              replace  regex "pattern" by "repl" in the body text ("count"
                       0: all), for XML answers
              truncate keep the first "keep" bytes (default half)
              cut      announce the whole body (Content-Length), send the
                       first "keep" bytes (default half), close
              pad      append "bytes" spaces (JSON stays valid)
              status   answer "status" instead (body kept), "headers" added
              body     answer "body" (string or JSON) instead
            JSON ops need a JSON body; the answer says what it was mangled
            into only by being wrong.

Options: --port (0: any free port; the port is the first line on stdout),
--credentials FILE, --resources FILE, --account-id (of keys whose entry
names none, default 123456789012), --parent-pid PID (exit when it is gone),
--max-lifetime S, --log FILE (one JSON line per request: service,
operation, target, status (0: connection reset), latency_ms, accessKeyId,
region, fault, model_errors, ...), --search-flavor opensearch|elasticsearch,
--forward SERVICE=URL (dynamodb, kinesis; repeatable: such requests are
signature-checked and model-validated, then sent byte for byte, every
header but Host kept, to URL, e.g. dynalite or kinesalite, whose answer is
returned as is; without it those services answer 503), --verbose.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws  # noqa: E402
from aws import core  # noqa: E402

if __name__ == "__main__":
    core.main(aws.SERVICES, __doc__)
