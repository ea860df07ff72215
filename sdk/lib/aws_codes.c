/* The AWS error codes that say "slow down" and "try again" (fanout/
 * aws_codes.h): the one list the engine's AWS layer classifies answers
 * with and plugins read per-entry codes with.
 *
 * From the AWS SDKs' "standard" retry mode: botocore/retries/standard.py
 * (github.com/boto/botocore, commit 0719e79583bba4ce33d41f430ab6ca9658ed35a5:
 * _THROTTLED_ERROR_CODES, _TRANSIENT_ERROR_CODES, RetryIDPCommunicationError)
 * and botocore/data/_retry.json (commit 1521276d74f22677143cb8877f50709c8dbe32e7),
 * and the services' models where they name a code of their own. */
#include <fanout/aws_codes.h>

#include <string.h>

/* Throttling: resent after a backoff (FANOUT_AWS_THROTTLED, FANOUT_THROTTLED). */
static const char *const s_throttling[] = {
    /* standard.py _THROTTLED_ERROR_CODES */
    "Throttling",
    "ThrottlingException",
    "KmsThrottled", /* SQS (JSON protocol): KMS throttled the queue's key */
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    /* DynamoDB transactions: a conflicting transaction is still running. */
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    /* Kinesis control-plane throttling (_retry.json, DescribeStream). */
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
    /* KMS behind a service (Kinesis and SQS server-side encryption); SNS
     * models it as code "KMSThrottling" and ThrottledException as
     * "Throttled" (sns/2010-03-31/service-2.json). */
    "KMSThrottlingException",
    "KMSThrottling",
    "Throttled",
    /* SQS's Query code for KmsThrottled (after its
     * "AWS.SimpleQueueService." prefix, which callers strip). */
    "KMS.ThrottlingException",
};

/* Transient: may be resent (FANOUT_AWS_RETRYABLE, FANOUT_RETRY). */
static const char *const s_transient[] = {
    /* standard.py _TRANSIENT_ERROR_CODES. PriorRequestNotComplete is also
     * in its throttled list; it means "the previous change is still being
     * applied", so it is counted with the transient ones here. */
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    /* special.py RetryIDPCommunicationError (web identity to STS). */
    "IDPCommunicationError",
    /* Server-side failures that arrive without a 5xx status: per-record
     * codes of Kinesis PutRecords and Firehose PutRecordBatch, and the
     * Query services' InternalError. */
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
};

static int s_in(const char *const *list, size_t n, const char *code)
{
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(list[i], code) == 0)
            return 1;
    return 0;
}

int fanout_aws_code_is_throttling(const char *code)
{
    return s_in(s_throttling, sizeof s_throttling / sizeof *s_throttling, code);
}

int fanout_aws_code_is_transient(const char *code)
{
    return s_in(s_transient, sizeof s_transient / sizeof *s_transient, code);
}
