#!/usr/bin/env node
// Writes a fixture of KPL aggregated records made by the AWS library
// (aws-kinesis-agg), for tests/unit/test_kpl.c:
//
//   node tests/node/gen-kpl.js OUT.json
//
// Each aggregate lists its blob (base64) and the user records that went into
// it, taken from our inputs, not from the library's own de-aggregator: the
// test then proves that our decoder gets back exactly what a producer put in.
// The output is deterministic (no clock, no Math.random), so a regenerated
// fixture equals the committed tests/data/kpl/agg-fixture.json.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const agg = require('aws-kinesis-agg');
const aggVersion = require('aws-kinesis-agg/package.json').version;

// Deterministic bytes: SHA-256 in counter mode over a label.
function bytes(label, n) {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; i++) {
    const block = crypto.createHash('sha256').update(`${label}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

// Decimal strings in [0, 2^128), as the KPL expects for explicit hash keys.
// All are >= 2^32: aws-kinesis-agg keeps its key tables in plain objects, and
// JavaScript lists array-index-like keys ("0".."4294967294") first, in
// numeric order, so such keys would be written to the wrong table slots.
const EHK = [
  '340282366920938463463374607431768211455', // 2^128 - 1, the top of the range
  '170141183460469231731687303715884105728', // 2^127, the middle
  '85070591730234615865843651857942052864', //  2^126
  '4294967296', //                               2^32
];

const KEYS = ['pk-0', 'pk-1', 'pk-2', 'ключ-1', '键-2', '🔑', 'e\u0301', 'a b/c:d=e', 'pk-3'];

function jsonData(i) {
  return Buffer.from(JSON.stringify({ i, text: `événement ${i}`, ok: i % 2 === 0 }));
}

// A valid aggregate of its own, carried as opaque user data: it must come
// back as data, not be expanded again.
let nestedBlob = null;

const cases = [
  {
    name: 'mixed-keys',
    records: Array.from({ length: 40 }, (_, i) => ({
      partitionKey: KEYS[(i * 7) % KEYS.length],
      data: jsonData(i),
      ...(i % 5 === 3 ? { explicitHashKey: EHK[i % 2] } : {}),
    })),
  },
  {
    name: 'explicit-hash-keys',
    records: Array.from({ length: 12 }, (_, i) => ({
      partitionKey: `ehk-${i % 3}`,
      data: Buffer.from(`record ${i}`),
      ...(i % 4 === 2 ? {} : { explicitHashKey: EHK[i % EHK.length] }),
    })),
  },
  {
    name: 'binary-data',
    records: Array.from({ length: 24 }, (_, i) => ({
      partitionKey: `bin-${i % 4}`,
      data: bytes(`binary-${i}`, (i * 37) % 301 + 1),
    })).concat([
      { partitionKey: 'bin-zeros', data: Buffer.alloc(64) },
      { partitionKey: 'bin-magic', data: Buffer.from([0xf3, 0x89, 0x9a, 0xc2, 0x00, 0xff]) },
      { partitionKey: 'bin-nested', data: () => nestedBlob },
    ]),
  },
  {
    name: 'empty-data',
    records: [
      { partitionKey: 'empty-0', data: Buffer.alloc(0) },
      { partitionKey: 'empty-1', data: Buffer.from('not empty') },
      { partitionKey: 'empty-0', data: Buffer.alloc(0), explicitHashKey: EHK[0] },
      { partitionKey: 'empty-2', data: Buffer.alloc(0) },
    ],
  },
  {
    name: 'large-record',
    records: [
      { partitionKey: 'large-before', data: Buffer.from('small') },
      // > 65535 bytes: a three-byte length varint, spans many KB.
      { partitionKey: 'large', data: bytes('large', 70000) },
      { partitionKey: 'large-after', data: Buffer.from('small again') },
    ],
  },
  {
    name: 'single-record',
    records: [{ partitionKey: 'only', data: Buffer.from('{"single":true}') }],
  },
  {
    name: 'single-record-with-hash-key',
    records: [{ partitionKey: 'only-ehk', data: Buffer.from('x'), explicitHashKey: EHK[1] }],
  },
  {
    // 256 characters is the Kinesis limit for a partition key; 512 UTF-8 bytes.
    name: 'longest-key',
    records: [
      { partitionKey: 'ж'.repeat(256), data: Buffer.from('long key') },
      { partitionKey: 'k'.repeat(256), data: Buffer.from('long ascii key') },
    ],
  },
  {
    // More than 128 distinct keys: partition_key_index needs a two-byte varint.
    name: 'many-records',
    records: Array.from({ length: 300 }, (_, i) => ({
      partitionKey: `key-${(i * 13) % 200}`,
      data: Buffer.from(`${i}`),
    })),
  },
];

// Aggregate `records` with the library; it must yield exactly one blob (all
// cases are far below the 1 MB Kinesis record limit).
function aggregate(name, records) {
  const blobs = [];
  const aggregator = new agg.RecordAggregator();
  aggregator.aggregateRecords(records, true, (err, encoded) => {
    if (err) throw new Error(`${name}: aws-kinesis-agg: ${err.message}`);
    blobs.push(encoded);
  });
  if (blobs.length !== 1) throw new Error(`${name}: expected 1 aggregate, got ${blobs.length}`);
  return blobs[0];
}

// Cross-check with the library's own de-aggregator, so a case that trips a
// library quirk (see EHK above) is caught here and not blamed on our
// decoder. Its de-aggregator reports explicit_hash_key_table[0] for records
// that have no explicit hash key (the absent optional field reads as 0), so
// hash keys are compared only where the input set one.
function crossCheck(name, encoded, records) {
  const kinesisRecord = {
    data: encoded.data.toString('base64'),
    partitionKey: encoded.partitionKey,
    sequenceNumber: '1',
  };
  agg.deaggregateSync(kinesisRecord, true, (err, users) => {
    if (err) throw new Error(`${name}: library de-aggregation: ${err.message}`);
    if (users.length !== records.length)
      throw new Error(`${name}: library gives ${users.length} records, put ${records.length}`);
    users.forEach((u, i) => {
      const r = records[i];
      if (u.partitionKey !== r.partitionKey ||
          u.data !== r.data.toString('base64') ||
          (r.explicitHashKey && u.explicitPartitionKey !== r.explicitHashKey))
        throw new Error(`${name}: record ${i} does not round-trip through the library`);
    });
  });
}

function main() {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node gen-kpl.js OUT.json\n');
    process.exit(2);
  }

  nestedBlob = aggregate('nested', [
    { partitionKey: 'inner', data: Buffer.from('inner data') },
  ]).data;

  const aggregates = cases.map(({ name, records }) => {
    const resolved = records.map((r) => ({
      ...r,
      data: typeof r.data === 'function' ? r.data() : r.data,
    }));
    // The library may rewrite record.data; hand it copies.
    const encoded = aggregate(name, resolved.map((r) => ({ ...r })));
    crossCheck(name, encoded, resolved);
    return {
      name,
      dataB64: encoded.data.toString('base64'),
      records: resolved.map((r) => ({
        key: r.partitionKey,
        explicitHashKey: r.explicitHashKey === undefined ? null : r.explicitHashKey,
        dataB64: r.data.toString('base64'),
      })),
    };
  });

  const fixture = {
    generator: 'tests/node/gen-kpl.js',
    library: `aws-kinesis-agg ${aggVersion}`,
    aggregates,
  };
  fs.writeFileSync(out, JSON.stringify(fixture, null, 2) + '\n');
}

main();
