/*
 * fanout AWS error codes: which service error codes mean "throttled" and
 * which "transient", as the engine's AWS layer classifies whole answers.
 * For plugins that read per-entry codes (PutRecords, SendMessageBatch,
 * PublishBatch...): one list for the engine and every plugin.
 *
 * Part of the SDK library (fanout-sdk).
 */
#ifndef FANOUT_AWS_CODES_H
#define FANOUT_AWS_CODES_H

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when `code` (exact, case-sensitive; NULL: no) is a throttling code
 * ("Throttling", "ThrottlingException", "TooManyRequestsException",
 * "ProvisionedThroughputExceededException", "RequestThrottled",
 * "KMSThrottlingException", ...): resend after a backoff. */
int fanout_aws_code_is_throttling(const char *code);

/* 1 when `code` is a transient server-side failure ("InternalFailure",
 * "InternalError", "ServiceUnavailable", "RequestTimeout", ...): may be
 * resent. */
int fanout_aws_code_is_transient(const char *code);

#ifdef __cplusplus
}
#endif

#endif
