/*
 * The `kinesis` destination, private to the plugin: the service's limits,
 * the per-target state, and the PutRecords call (kinesis_api.c).
 */
#ifndef FANOUT_PLUGIN_KINESIS_H
#define FANOUT_PLUGIN_KINESIS_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/aws.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>
#include <fanout/stream.h>

/*
 * Limits of PutRecords. Sources: the Kinesis API reference for PutRecords
 * and botocore's kinesis/2013-12-02/service-2.json (github.com/boto/botocore
 * @0e6e240: PutRecordsRequestEntryList max 500, PartitionKey 1..256,
 * ExplicitHashKey pattern 0|([1-9]\d{0,38}), StreamName [a-zA-Z0-9_.-]+
 * 1..128), and the Oct 2025 change (docs.aws.amazon.com/streams/latest/dev/
 * large-records.html; aws.amazon.com/about-aws/whats-new/2025/10/
 * amazon-kinesis-data-streams-10x-larger-record-sizes/): records up to
 * 10 MiB and requests up to 10 MiB, partition keys included, while each
 * stream's maximum record size stays 1 MiB until raised with
 * UpdateMaxRecordSize (MaxRecordSizeInKiB 1024..10240).
 */
#define KINESIS_MAX_RECORDS_PER_CALL 500u
#define KINESIS_MAX_CALL_BYTES       (10u * 1024u * 1024u)
#define KINESIS_DEFAULT_RECORD_KIB   1024
#define KINESIS_MIN_RECORD_KIB       1024
#define KINESIS_MAX_RECORD_KIB       10240
/* Partition keys are 1..256 "Unicode characters": Java string lengths,
 * counted here as UTF-16 code units (a character beyond U+FFFF counts 2). */
#define KINESIS_MAX_KEY_UNITS 256u
#define KINESIS_MAX_NAME_LEN  128u

/* What one mapping (target) sends to, fixed at `open`. */
struct kinesis_target {
    struct fanout_stream s; /* ordered: parallel: false */
    int hash_long_keys;     /* hashLongPartitionKeys */
    int explicit_hashes;    /* collapse none: pass KPL explicit hash keys on */
};

/* Kinesis data streams as fanout/stream.h describes a service, with the plugin's
 * PutRecords protocol (kinesis_api.c); fanout_stream_send is its `send`. */
extern const struct fanout_stream_kind kinesis_kind;

#endif /* FANOUT_PLUGIN_KINESIS_H */
