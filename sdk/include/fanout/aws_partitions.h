/*
 * fanout AWS partitions: which partition a region is in, its DNS suffix,
 * and whether a host name is an AWS one. The one table of partitions: the
 * engine's endpoint resolver and the plugins that read AWS hosts (an SQS
 * queue URL's) use it.
 *
 * Part of the SDK library (fanout-sdk).
 */
#ifndef FANOUT_AWS_PARTITIONS_H
#define FANOUT_AWS_PARTITIONS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fanout_aws_partition {
    const char *id;         /* "aws", "aws-cn", "aws-us-gov", "aws-iso"... */
    const char *dns_suffix; /* "amazonaws.com", "amazonaws.com.cn"... */
    /* The dual-stack endpoints' suffix when it differs ("api.aws"), else
     * NULL. */
    const char *dual_stack_dns_suffix;
    const char *prefixes[10]; /* region prefixes, NULL-terminated */
};

/* The partition of `region`: <prefix>-<word>-<digits> of one of its
 * prefixes, or its "<id>-global" pseudo-region; "aws" for any other
 * region (NULL included), as `aws.partition` answers. Never NULL. */
const struct fanout_aws_partition *fanout_aws_partition_of(const char *region);

/* The i-th partition (0: "aws"), NULL past the last. */
const struct fanout_aws_partition *fanout_aws_partition_at(size_t i);

/* 1 when `host` (lower case, no port) ends with "." and a partition's DNS
 * suffix or dual-stack suffix: an AWS service's host, e.g.
 * sqs.cn-north-1.amazonaws.com.cn, sqs.us-east-1.api.aws. */
int fanout_aws_host_is_aws(const char *host);

#ifdef __cplusplus
}
#endif

#endif
