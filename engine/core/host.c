/* The host services table handed to plugins. */
#include <limits.h>
#include <sys/time.h>

#include "core/engine.h"
#include "common/log.h"
#include "aws/client.h"
#include "core/runtime.h"

static int64_t s_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int s_log_enabled(enum fanout_log_level level)
{
    return fanout_log_enabled(level);
}

static const struct fanout_host s_host = {
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR,
    .struct_size = sizeof(struct fanout_host),
    .log = fanout_log,
    .vlog = fanout_vlog,
    .log_enabled = s_log_enabled,
    .now_ms = s_now_ms,
    .remaining_ms = fanout_runtime_remaining_ms,
    /* One attempt per request: the engine owns the retries of record
     * sends (client.h). */
    .aws_call = fanout_aws_call_once,
    .aws_response_clean_up = fanout_aws_response_clean_up,
    .aws_response_header = fanout_aws_response_header,
    .aws_endpoint = fanout_aws_endpoint,
};

const struct fanout_host *fanout_host_default(void)
{
    return &s_host;
}
