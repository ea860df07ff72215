/*
 * fanout XML reader for the AWS Query / REST-XML answers (STS, SNS, SQS
 * Query, ElastiCache, the services' <Error> bodies): find an element by
 * name, read its text. Not a validating parser: no DTDs, no external
 * entities, nothing allocated. Hostile input is bounded by its length;
 * nothing is read past p + n and nothing needs a NUL terminator.
 *
 * Part of the SDK library (fanout-sdk): plugins and the engine use the
 * same reader.
 */
#ifndef FANOUT_XML_H
#define FANOUT_XML_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of fanout_xml_find. */
enum {
    /* Match `name` against the local name: <ns:Code> is found as "Code". */
    FANOUT_XML_ANY_PREFIX = 1,
};

/* Flags of fanout_xml_text. */
enum {
    /* Drop the whitespace around the text. */
    FANOUT_XML_TRIM = 1,
};

/* An element found by fanout_xml_find. */
struct fanout_xml_elem {
    const char *content; /* between the start and the end tag */
    size_t content_len;
    size_t after; /* offset in the scanned range just past the element */
    int closed;   /* 0: its end tag is missing; content runs to the end */
};

/*
 * The first element called `name` in [p, p + n), at any depth, in document
 * order. `<Error>` does not match `<Errors>`; attributes are skipped
 * (quoted '>' included); comments, CDATA sections, processing instructions
 * and declarations are not looked into. Nested elements of the same name
 * are counted, so the outer one gets its whole content. `<name/>` is found
 * with empty content. Returns 1 when found (check `closed`), else 0 (also
 * when the start tag itself is cut off).
 */
int fanout_xml_find(const char *p, size_t n, const char *name, unsigned flags,
                    struct fanout_xml_elem *out);

/*
 * The text of an element's content [s, s + n): the five named entities and
 * numeric references decoded (UTF-8; an invalid code point as '?'), CDATA
 * sections taken as they are, tags and comments inside dropped. Written
 * into out (NUL-terminated, cut to out_len - 1 bytes; out may be NULL when
 * out_len is 0). Returns the length of the whole text, as snprintf does: a
 * result >= out_len means it was cut. The text is never longer than n.
 */
size_t fanout_xml_text(const char *s, size_t n, unsigned flags, char *out, size_t out_len);

/*
 * fanout_xml_find (closed elements only) then fanout_xml_text: the text of
 * element `name` in [p, p + n) into out. Returns its length (>= out_len:
 * cut), or -1 when there is no closed element of that name.
 */
long fanout_xml_field(const char *p, size_t n, const char *name, unsigned find_flags,
                      unsigned text_flags, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
