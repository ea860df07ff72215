/* The shared config and credentials files (INI, engine/aws/endpoint.c,
 * included here: the parser is static) and endpoint URL splitting.
 *
 * Input: byte 0 picks the file kind (bit 0: credentials file), the
 * profile (bits 1-3) and the key (bits 4-7); the rest is the file. The
 * same bytes, up to the first line break, are also split as an endpoint
 * URL.
 *
 * Checks, beyond ASan and UBSan: a value read is trimmed (a continued
 * value's lines too); a split URL has an http(s) scheme, a host, and a
 * path that is empty or starts with '/', each terminated in its buffer. */
#include "aws/endpoint.c"

#include "fuzz.h"

static const char *const s_profiles[] = {"default", "dev",    "prod", "p.q",
                                         "a/b",     "x@y:z+", "",     "services"};
static const char *const s_keys[] = {"aws_access_key_id",
                                     "aws_secret_access_key",
                                     "aws_session_token",
                                     "region",
                                     "role_arn",
                                     "services",
                                     "endpoint_url",
                                     "kinesis.endpoint_url",
                                     "s3.endpoint_url",
                                     "sqs.endpoint_url",
                                     "iot_data_plane.endpoint_url",
                                     "sub.",
                                     ".x",
                                     "a.b.c",
                                     "source_profile",
                                     "credential_source"};

static void s_check_value(const char *v)
{
    if (!v)
        return;
    size_t n = strlen(v);
    if (n == 0)
        return;
    FUZZ_CHECK(!s_ws(v[0]) && v[0] != '\r' && !s_ws(v[n - 1]) && v[n - 1] != '\r',
               "value \"%s\" not trimmed", v);
    for (const char *nl = strchr(v, '\n'); nl; nl = strchr(nl + 1, '\n'))
        FUZZ_CHECK(nl[1] && !s_ws(nl[1]) && nl[1] != '\n' && !s_ws(nl[-1]),
                   "continued value \"%s\": a line not trimmed", v);
}

static void s_check_url(const char *url)
{
    char scheme[8], host[300], path[300];
    if (fanout_url_split(url, scheme, sizeof scheme, host, sizeof host, path, sizeof path))
        return;
    FUZZ_CHECK(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0, "scheme %s",
               scheme);
    FUZZ_CHECK(host[0] && strnlen(host, sizeof host) < sizeof host, "host");
    FUZZ_CHECK(strnlen(path, sizeof path) < sizeof path, "path not terminated");
    FUZZ_CHECK(path[0] == 0 || path[0] == '/', "path \"%s\"", path);
    for (const char *c = host; *c; c++)
        FUZZ_CHECK((unsigned char)*c > 0x20 && *c != 0x7f && *c != '/' && *c != '@',
                   "host \"%s\"", host);
    /* tiny buffers: refused, never overrun */
    char s1[1], h1[1], p1[1];
    (void)fanout_url_split(url, s1, sizeof s1, h1, sizeof h1, p1, sizeof p1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size < 1)
        return 0;
    int credentials = data[0] & 1;
    const char *profile = s_profiles[(data[0] >> 1) & 7];
    const char *key = s_keys[data[0] >> 4];
    char *text = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees overreads */
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data + 1, size - 1);
    char *v = s_lookup(text, size - 1, credentials, profile, key);
    /* a NUL in the file cuts a value short where it stands: only files
     * without one have trimmed values */
    if (!memchr(text, 0, size - 1))
        s_check_value(v);
    free(v);
    free(text);

    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    char *url = fuzz_dup(data + 1, nl ? (size_t)(nl - data - 1) : size - 1);
    s_check_url(url);
    free(url);
    return 0;
}
