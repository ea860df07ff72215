/* The SDK's XML reader (sdk/lib/xml.c): element lookup and text decoding
 * over arbitrary bytes.
 *
 * Input: byte 0 the flags (bit 0: any prefix; bit 1: trim), byte 1 the
 * size of the text buffer, then a name up to the first '\n', then the
 * document.
 *
 * Checks, beyond ASan and UBSan: a found element lies inside the document
 * and `after` does not go back; an element closed at `after` has nothing
 * past it in its content; the text is never longer than its input, is
 * NUL-terminated inside its buffer, and its length does not depend on the
 * buffer's size; walking all the elements of a name ends. */
#include <fanout/xml.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned find_flags = data[0] & 1 ? FANOUT_XML_ANY_PREFIX : 0;
    unsigned text_flags = data[0] & 2 ? FANOUT_XML_TRIM : 0;
    size_t cap = data[1];
    const uint8_t *rest = data + 2, *nl = memchr(rest, '\n', size - 2);
    if (!nl)
        return 0;
    char *name = fuzz_dup(rest, (size_t)(nl - rest));
    size_t n = size - 2 - (size_t)(nl - rest) - 1;
    /* exact-size copies, so ASan sees a read past either */
    char *doc = n ? malloc(n) : NULL;
    FUZZ_CHECK(!n || doc, "out of memory");
    if (n)
        memcpy(doc, nl + 1, n);
    char *out = cap ? malloc(cap) : NULL;
    FUZZ_CHECK(!cap || out, "out of memory");

    size_t at = 0, steps = 0;
    struct fanout_xml_elem e;
    while (at <= n && fanout_xml_find(doc ? doc + at : "", n - at, name, find_flags, &e)) {
        const char *base = doc + at;
        FUZZ_CHECK(e.content >= base && e.content + e.content_len <= base + (n - at),
                   "content outside the document");
        FUZZ_CHECK(e.after <= n - at && e.after > 0, "after %zu of %zu", e.after, n - at);
        FUZZ_CHECK(e.closed || e.after == n - at, "an open element ends before the end");
        FUZZ_CHECK((size_t)(e.content - base) + e.content_len <= e.after,
                   "content runs past the element");
        size_t len = fanout_xml_text(e.content, e.content_len, text_flags, out, cap);
        FUZZ_CHECK(len <= e.content_len, "text %zu longer than its input %zu", len,
                   e.content_len);
        if (cap) {
            size_t got = strnlen(out, cap);
            FUZZ_CHECK(got < cap, "text not terminated in %zu bytes", cap);
            FUZZ_CHECK(len >= cap || memchr(e.content, 0, e.content_len) || got == len,
                       "text length %zu, %zu written", len, got);
        }
        FUZZ_CHECK(fanout_xml_text(e.content, e.content_len, text_flags, NULL, 0) == len,
                   "the length depends on the buffer");
        at += e.after;
        FUZZ_CHECK(++steps <= n + 1, "the walk does not end");
    }
    size_t len = fanout_xml_text(doc, n, text_flags, out, cap);
    FUZZ_CHECK(len <= n, "text %zu longer than its input %zu", len, n);
    long f = fanout_xml_field(doc, n, name, find_flags, text_flags, out, cap);
    FUZZ_CHECK(f >= -1 && f <= (long)n, "field %ld", f);
    free(out);
    free(doc);
    free(name);
    return 0;
}
