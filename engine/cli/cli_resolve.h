/* register's destinations by short name, resolved with the service calls
 * the original aws-lambda-fanout CLI made through the aws command. */
#ifndef FANOUT_CLI_RESOLVE_H
#define FANOUT_CLI_RESOLVE_H

struct fanout_cli_dest {
    const char *command;     /* for messages: "register" */
    const char *type;        /* the plugin type */
    const char *destination; /* as given */
    const char *index;       /* --index (es), or NULL */
    const char *dest_region; /* --destination-region, or NULL */
    const char *region;      /* --region, or NULL */
    int has_role;            /* --destination-role-arn given */
};

/* The destination to store, in *out (malloc'd):
 *   sqs       a queue name: its URL (GetQueueUrl)
 *   sns       a topic name: its ARN (ListTopics, the ARN ending ":name")
 *   kinesis   a stream name, checked (DescribeStream); an ARN: the name
 *   firehose  a delivery stream name, checked (DescribeDeliveryStream);
 *             an ARN: the name
 *   lambda    a function name, checked (GetFunction); an unqualified ARN:
 *             the name
 *   es        a domain name with `index`: "endpoint#index"
 *             (DescribeElasticsearchDomain)
 *   iot       a topic: "<account endpoint>#topic" (DescribeEndpoint,
 *             iot:Data-ATS)
 *   memcached a cluster id: its configuration endpoint "host:port"
 *             (DescribeCacheClusters)
 *   redis     a replication group id: its primary endpoint "host:port"
 *             (DescribeReplicationGroups)
 * Full forms (ARN, URL, host:port, endpoint#...) and other types are kept
 * as given, without a request. Returns 0, 1 (a request failed: message
 * printed) or 2 (usage error, or no such resource: message printed). */
int fanout_cli_resolve_destination(const struct fanout_cli_dest *d, char **out);

#endif
