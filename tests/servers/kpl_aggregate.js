#!/usr/bin/env node
// KPL aggregated records made by the AWS library (aws-kinesis-agg), for the
// fault-injection test (tests/integration/test_faults.py).
//
//   node tests/servers/kpl_aggregate.js < groups.json > blobs.json
//
// stdin: [[{"pk": partition key, "data": base64}, ...], ...], one list of
// user records per aggregate; stdout: ["base64 of the aggregate", ...], one
// per list. A list that the library would split into several aggregates is
// an error (keep each list well under 1 MB).
'use strict';

const path = require('path');
const agg = require(path.join(__dirname, '..', 'node', 'node_modules', 'aws-kinesis-agg'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const groups = JSON.parse(input);
  const out = groups.map((records, g) => {
    const blobs = [];
    const aggregator = new agg.RecordAggregator();
    aggregator.aggregateRecords(
      records.map((r) => ({ partitionKey: r.pk, data: Buffer.from(r.data, 'base64') })),
      true,
      (err, encoded) => {
        if (err) throw new Error(`group ${g}: aws-kinesis-agg: ${err.message}`);
        blobs.push(encoded.data.toString('base64'));
      });
    if (blobs.length !== 1) throw new Error(`group ${g}: ${blobs.length} aggregates, expected 1`);
    return blobs[0];
  });
  process.stdout.write(JSON.stringify(out));
});
