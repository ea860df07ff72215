/*
 * The `firehose` destination, private to the plugin: the service's limits,
 * the per-target state, and the PutRecordBatch call (firehose_api.c).
 */
#ifndef FANOUT_PLUGIN_FIREHOSE_H
#define FANOUT_PLUGIN_FIREHOSE_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/aws.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>
#include <fanout/stream.h>

/*
 * Limits of PutRecordBatch, which cannot be raised. Sources: the Firehose
 * API reference (PutRecordBatch: "up to 500 records. Each record in the
 * request can be as large as 1,000 KB (before base64 encoding), up to a
 * limit of 4 MB for the entire request"; Record: Data length 0..1024000)
 * and botocore's firehose/2015-08-04/service-2.json (github.com/boto/botocore
 * @0e6e240: PutRecordBatchRequestEntryList 1..500, Data max 1024000,
 * DeliveryStreamName [a-zA-Z0-9_.-]+ 1..64).
 */
#define FIREHOSE_MAX_RECORDS_PER_CALL 500u
#define FIREHOSE_MAX_RECORD_BYTES     1024000u
#define FIREHOSE_MAX_REQUEST_BYTES    (4u * 1024u * 1024u)
#define FIREHOSE_MAX_NAME_LEN         64u

/*
 * The per-request limit is not said to be before base64 the way the
 * per-record one is, and producers have been refused under it with raw
 * totals below 4 MB (github.com/awslabs/lambda-streams-to-firehose issue
 * 49). So the whole HTTP body is kept within 4 MiB, encoding included:
 *
 *   body  = {"DeliveryStreamName":"<name>","Records":[ ... ]}
 *           at most 23 + 64 + 13 + 2 = 102 bytes of envelope
 *   entry = {"Data":"<base64>"},   12 bytes + base64, and the base64 of
 *           n bytes is 4 * ceil(n / 3) <= 4 (n + 2) / 3
 *
 * so an entry is at most 4/3 (n + 11) and the body stays within 4 MiB when
 * sum(n + 11) <= 3/4 (4 MiB - 102). In the engine's raw-byte terms: 3 MiB
 * per call, 11 bytes per message, 77 (>= 3/4 of 102) per call. A record
 * with `appendNewline` carries one more byte.
 */
#define FIREHOSE_CALL_BUDGET          (FIREHOSE_MAX_REQUEST_BYTES / 4u * 3u)
#define FIREHOSE_PER_RECORD_OVERHEAD  11u
#define FIREHOSE_PER_REQUEST_OVERHEAD 77u

/* What one mapping (target) sends to, fixed at `open`. */
struct firehose_target {
    struct fanout_stream s;
    int append_newline;
};

/* Firehose streams as fanout/stream.h describes a service, with the plugin's
 * PutRecordBatch protocol (firehose_api.c); fanout_stream_send is its `send`. */
extern const struct fanout_stream_kind firehose_kind;

#endif /* FANOUT_PLUGIN_FIREHOSE_H */
