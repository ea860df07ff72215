/* The plain-JSON reader (fanout/jplain.h). */
#include <stdint.h>
#include <string.h>

#include "fanout/jplain.h"
#include "fanout/swar.h"

const char *fanout_jplain_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

const char *fanout_jplain_string(const char *p, const char *end, const char **s, size_t *n)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *q = ++p;
    /* 8 bytes at a time while all are plain (0x20..0x7e, not '"' or
     * '\\'): the bit tricks of fanout_sbuf_json_str, DEL added; the
     * byte loop reads from the first that is not */
    while (end - q >= 8) {
        uint64_t v;
        memcpy(&v, q, 8);
        if (fanout_swar_high(v) | fanout_swar_below(v, 0x20) | fanout_swar_eq(v, '"') |
            fanout_swar_eq(v, '\\') | fanout_swar_eq(v, 0x7f))
            break;
        q += 8;
    }
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
        q++;
    }
    if (q >= end)
        return NULL;
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

static int s_lit(const char *p, const char *end, const char *lit, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

const char *fanout_jplain_value(const char *p, const char *end, struct fanout_jplain *v)
{
    memset(v, 0, sizeof *v);
    if (p >= end)
        return NULL;
    if (*p == '"') {
        v->type = FANOUT_JPLAIN_STRING;
        return fanout_jplain_string(p, end, &v->p, &v->n);
    }
    if (s_lit(p, end, "null", 4)) {
        v->type = FANOUT_JPLAIN_NULL;
        return p + 4;
    }
    if (s_lit(p, end, "true", 4)) {
        v->type = FANOUT_JPLAIN_TRUE;
        return p + 4;
    }
    if (s_lit(p, end, "false", 5)) {
        v->type = FANOUT_JPLAIN_FALSE;
        return p + 5;
    }
    if (*p < '0' || *p > '9')
        return NULL;
    const char *q = p;
    long long num = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - p < 18)
        num = num * 10 + (*q++ - '0');
    /* 012, 1.5, 1e3 and integers of 19 digits or more are not plain */
    if ((*p == '0' && q - p > 1) ||
        (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
        return NULL;
    v->type = FANOUT_JPLAIN_INT;
    v->p = p;
    v->n = (size_t)(q - p);
    v->num = num;
    return q;
}

const char *fanout_jplain_name(const char *p, const char *end, const char **name,
                               size_t *name_len)
{
    p = fanout_jplain_string(fanout_jplain_ws(p, end), end, name, name_len);
    if (!p)
        return NULL;
    p = fanout_jplain_ws(p, end);
    if (p >= end || *p != ':')
        return NULL;
    return fanout_jplain_ws(p + 1, end);
}

int fanout_jplain_next(const char **p, const char *end, char close)
{
    const char *q = fanout_jplain_ws(*p, end);
    if (q < end && *q == ',') {
        *p = fanout_jplain_ws(q + 1, end);
        return 1;
    }
    if (q < end && *q == close) {
        *p = q + 1;
        return 0;
    }
    return -1;
}

int fanout_jplain_is(const char *name, size_t name_len, const char *s)
{
    return name_len == strlen(s) && memcmp(name, s, name_len) == 0;
}

int fanout_jplain_seen(const struct fanout_jplain_member *m, size_t count, const char *name,
                       size_t name_len)
{
    for (size_t i = 0; i < count; i++)
        if (m[i].name_len == name_len && memcmp(m[i].name, name, name_len) == 0)
            return 1;
    return 0;
}

const char *fanout_jplain_object(const char *p, const char *end,
                                 struct fanout_jplain_member *m, size_t max, size_t *count)
{
    *count = 0;
    p = fanout_jplain_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = fanout_jplain_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        const char *name;
        size_t len;
        if (*count == max || !(p = fanout_jplain_name(p, end, &name, &len)) ||
            fanout_jplain_seen(m, *count, name, len))
            return NULL;
        struct fanout_jplain_member *x = &m[(*count)++];
        x->name = name;
        x->name_len = len;
        if (!(p = fanout_jplain_value(p, end, &x->value)))
            return NULL;
        int more = fanout_jplain_next(&p, end, '}');
        if (more < 0)
            return NULL;
        if (!more)
            return p;
    }
}
