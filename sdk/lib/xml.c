/* The SDK's XML reader (fanout/xml.h): element lookup and text decoding
 * over a byte range, no allocation. It replaces the four scanners the
 * engine, the CLI and the SNS plugin each had. */
#include <fanout/xml.h>

#include <string.h>

static int s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int s_name_end(char c)
{
    return c == '>' || c == '/' || s_space(c);
}

static int s_starts(const char *p, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    return n - i >= l && memcmp(p + i, lit, l) == 0;
}

/* Index just past the first `lit` at or after i, or n. */
static size_t s_past(const char *p, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    for (; i + l <= n; i++)
        if (memcmp(p + i, lit, l) == 0)
            return i + l;
    return n;
}

/* The '>' closing the tag opened at i (quoted attribute values skipped),
 * or n when it is cut off. */
static size_t s_tag_end(const char *p, size_t n, size_t i)
{
    char quote = 0;
    for (; i < n; i++) {
        if (quote) {
            if (p[i] == quote)
                quote = 0;
        } else if (p[i] == '"' || p[i] == '\'') {
            quote = p[i];
        } else if (p[i] == '>') {
            return i;
        }
    }
    return n;
}

/* Markup at p[i] == '<' that holds no element: a comment, CDATA, a
 * processing instruction or a declaration. The index past it (n when cut
 * off), or 0 when it is a tag. */
static size_t s_skip_other(const char *p, size_t n, size_t i)
{
    if (s_starts(p, n, i, "<!--"))
        return s_past(p, n, i + 4, "-->");
    if (s_starts(p, n, i, "<![CDATA["))
        return s_past(p, n, i + 9, "]]>");
    if (s_starts(p, n, i, "<?"))
        return s_past(p, n, i + 2, "?>");
    if (s_starts(p, n, i, "<!")) {
        size_t gt = s_tag_end(p, n, i);
        return gt < n ? gt + 1 : n;
    }
    return 0;
}

/* The end of the element whose content starts at `start` and whose
 * qualified name is q[0..ql): sets content_len, after and closed. */
static void s_close(const char *p, size_t n, size_t start, const char *q, size_t ql,
                    struct fanout_xml_elem *out)
{
    unsigned long depth = 0;
    size_t i = start;
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        if (!lt)
            break;
        i = (size_t)(lt - p);
        size_t past = s_skip_other(p, n, i);
        if (past) {
            i = past;
            continue;
        }
        int end = i + 1 < n && p[i + 1] == '/';
        size_t nm = i + 1 + (size_t)end;
        size_t gt = s_tag_end(p, n, nm);
        if (gt >= n)
            break;
        int same = gt - nm >= ql && memcmp(p + nm, q, ql) == 0 &&
                   (nm + ql == gt || s_name_end(p[nm + ql]));
        if (same && end) {
            size_t k = nm + ql;
            while (k < gt && s_space(p[k]))
                k++;
            if (k == gt) {
                if (depth == 0) {
                    out->content_len = i - start;
                    out->after = gt + 1;
                    out->closed = 1;
                    return;
                }
                depth--;
            }
        } else if (same && p[gt - 1] != '/') {
            depth++;
        }
        i = gt + 1;
    }
    out->content_len = n - start;
    out->after = n;
    out->closed = 0;
}

int fanout_xml_find(const char *p, size_t n, const char *name, unsigned flags,
                    struct fanout_xml_elem *out)
{
    size_t nl = strlen(name);
    if (!p || !nl)
        return 0;
    size_t i = 0;
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        if (!lt)
            return 0;
        i = (size_t)(lt - p);
        size_t past = s_skip_other(p, n, i);
        if (past) {
            i = past;
            continue;
        }
        size_t q = i + 1, k = q;
        while (k < n && !s_name_end(p[k]))
            k++;
        size_t gt = s_tag_end(p, n, k);
        if (gt >= n)
            return 0;
        size_t local = q;
        if (flags & FANOUT_XML_ANY_PREFIX)
            for (size_t t = q; t < k; t++)
                if (p[t] == ':')
                    local = t + 1;
        if (p[q] == '/' || k - local != nl || memcmp(p + local, name, nl) != 0) {
            i = gt + 1;
            continue;
        }
        out->content = p + gt + 1;
        if (p[gt - 1] == '/') { /* <Name/> */
            out->content_len = 0;
            out->after = gt + 1;
            out->closed = 1;
            return 1;
        }
        s_close(p, n, gt + 1, p + q, k - q, out);
        return 1;
    }
    return 0;
}

struct s_sink {
    char *out;
    size_t cap;
    size_t len;
};

static void s_put(struct s_sink *s, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++, s->len++)
        if (s->len + 1 < s->cap)
            s->out[s->len] = b[i];
}

static size_t s_utf8(unsigned long cp, char *b)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        b[0] = '?';
        return 1;
    }
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int s_digit(char c, int hex)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (hex && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The entity at s[0] == '&' into b; the bytes it took into *used. An
 * unknown or malformed one stays as it is ('&' alone taken). */
static size_t s_entity(const char *s, size_t n, char *b, size_t *used)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
        size_t l = strlen(named[i].name);
        if (n >= 1 + l && memcmp(s + 1, named[i].name, l) == 0) {
            b[0] = named[i].c;
            *used = 1 + l;
            return 1;
        }
    }
    if (n >= 4 && s[1] == '#') {
        int hex = s[2] == 'x' || s[2] == 'X';
        size_t i = hex ? 3 : 2, digits = 0;
        unsigned long cp = 0;
        for (int d; i < n && digits < 9 && (d = s_digit(s[i], hex)) >= 0; i++, digits++)
            cp = cp * (hex ? 16 : 10) + (unsigned long)d;
        if (i < n && s[i] == ';' && digits > 0 && digits <= 8) {
            *used = i + 1;
            return s_utf8(cp, b);
        }
    }
    b[0] = '&';
    *used = 1;
    return 1;
}

size_t fanout_xml_text(const char *s, size_t n, unsigned flags, char *out, size_t out_len)
{
    struct s_sink sink = {out, out ? out_len : 0, 0};
    if (!s)
        n = 0;
    if (flags & FANOUT_XML_TRIM) {
        while (n && s_space(*s))
            s++, n--;
        while (n && s_space(s[n - 1]))
            n--;
    }
    size_t i = 0;
    while (i < n) {
        if (s[i] == '&') {
            char b[4];
            size_t used;
            s_put(&sink, b, s_entity(s + i, n - i, b, &used));
            i += used;
        } else if (s[i] == '<') {
            if (s_starts(s, n, i, "<![CDATA[")) {
                size_t end = s_past(s, n, i + 9, "]]>");
                size_t stop =
                    end >= i + 12 && memcmp(s + end - 3, "]]>", 3) == 0 ? end - 3 : end;
                s_put(&sink, s + i + 9, stop - (i + 9));
                i = end;
            } else if (s_starts(s, n, i, "<!--")) {
                i = s_past(s, n, i + 4, "-->");
            } else {
                size_t gt = s_tag_end(s, n, i);
                i = gt < n ? gt + 1 : n;
            }
        } else {
            const char *next = s + i;
            size_t run = 0;
            while (i + run < n && next[run] != '&' && next[run] != '<')
                run++;
            s_put(&sink, next, run);
            i += run;
        }
    }
    if (sink.cap)
        sink.out[sink.len < sink.cap ? sink.len : sink.cap - 1] = '\0';
    return sink.len;
}

long fanout_xml_field(const char *p, size_t n, const char *name, unsigned find_flags,
                      unsigned text_flags, char *out, size_t out_len)
{
    struct fanout_xml_elem e;
    if (!fanout_xml_find(p, n, name, find_flags, &e) || !e.closed) {
        if (out && out_len)
            out[0] = '\0';
        return -1;
    }
    return (long)fanout_xml_text(e.content, e.content_len, text_flags, out, out_len);
}
