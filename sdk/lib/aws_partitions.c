/* The AWS partitions (fanout/aws_partitions.h).
 *
 * From botocore/data/partitions.json (github.com/boto/botocore, commit
 * c870f2c199fe36e2bed3afa8f8b5282a739cb711), the same data the SDKs'
 * endpoint rules call `aws.partition`. A region belongs to a partition
 * when it reads <prefix>-<word>-<digits> (the regionRegex, with
 * \w = [A-Za-z0-9_]) or is the partition's "<id>-global" pseudo-region.
 * The patterns do not overlap (a word holds no '-'), so order is free.
 *
 *   aws         ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$   amazonaws.com
 *   aws-cn      ^cn-\w+-\d+$                             amazonaws.com.cn
 *   aws-eusc    ^eusc-(de)-\w+-\d+$                      amazonaws.eu
 *   aws-iso     ^us-iso-\w+-\d+$                         c2s.ic.gov
 *   aws-iso-b   ^us-isob-\w+-\d+$                        sc2s.sgov.gov
 *   aws-iso-e   ^eu-isoe-\w+-\d+$                        cloud.adc-e.uk
 *   aws-iso-f   ^us-isof-\w+-\d+$                        csp.hci.ic.gov
 *   aws-us-gov  ^us-gov-\w+-\d+$                         amazonaws.com
 *
 * Dual-stack suffixes (dualStackDnsSuffix) are kept where they differ
 * from the DNS suffix: api.aws (aws, aws-us-gov) and
 * api.amazonwebservices.com.cn (aws-cn). */
#include <fanout/aws_partitions.h>

#include <string.h>

static const struct fanout_aws_partition s_partitions[] = {
    {"aws",
     "amazonaws.com",
     "api.aws",
     {"us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", NULL}},
    {"aws-cn", "amazonaws.com.cn", "api.amazonwebservices.com.cn", {"cn", NULL}},
    {"aws-eusc", "amazonaws.eu", NULL, {"eusc-de", NULL}},
    {"aws-iso", "c2s.ic.gov", NULL, {"us-iso", NULL}},
    {"aws-iso-b", "sc2s.sgov.gov", NULL, {"us-isob", NULL}},
    {"aws-iso-e", "cloud.adc-e.uk", NULL, {"eu-isoe", NULL}},
    {"aws-iso-f", "csp.hci.ic.gov", NULL, {"us-isof", NULL}},
    {"aws-us-gov", "amazonaws.com", "api.aws", {"us-gov", NULL}},
};

#define S_COUNT (sizeof s_partitions / sizeof *s_partitions)

static int s_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* region == prefix "-" \w+ "-" \d+ */
static int s_region_in(const char *region, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(region, prefix, n) != 0 || region[n] != '-')
        return 0;
    const char *p = region + n + 1;
    const char *w = p;
    while (s_word_char(*p))
        p++;
    if (p == w || *p != '-')
        return 0;
    const char *d = ++p;
    while (*p >= '0' && *p <= '9')
        p++;
    return p != d && *p == '\0';
}

const struct fanout_aws_partition *fanout_aws_partition_of(const char *region)
{
    for (size_t i = 0; region && i < S_COUNT; i++) {
        const struct fanout_aws_partition *pt = &s_partitions[i];
        size_t n = strlen(pt->id);
        if (strncmp(region, pt->id, n) == 0 && strcmp(region + n, "-global") == 0)
            return pt;
        for (size_t j = 0; pt->prefixes[j]; j++)
            if (s_region_in(region, pt->prefixes[j]))
                return pt;
    }
    return &s_partitions[0];
}

const struct fanout_aws_partition *fanout_aws_partition_at(size_t i)
{
    return i < S_COUNT ? &s_partitions[i] : NULL;
}

static int s_dot_suffix(const char *host, const char *suffix)
{
    size_t n = strlen(host), k = suffix ? strlen(suffix) : 0;
    return k && n > k && host[n - k - 1] == '.' && strcmp(host + n - k, suffix) == 0;
}

int fanout_aws_host_is_aws(const char *host)
{
    for (size_t i = 0; host && i < S_COUNT; i++)
        if (s_dot_suffix(host, s_partitions[i].dns_suffix) ||
            s_dot_suffix(host, s_partitions[i].dual_stack_dns_suffix))
            return 1;
    return 0;
}
