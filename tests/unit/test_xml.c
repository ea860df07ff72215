/* The SDK's XML reader (sdk/lib/xml.c): element lookup, text decoding,
 * truncation and hostile input. */
#include <check.h>

#include <fanout/xml.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

/* The text of the first `name` in `doc` (find flags `ff`, text flags
 * `tf`), or "<absent>" / "<open>" when not found or not closed. */
static const char *s_text(const char *doc, const char *name, unsigned ff, unsigned tf)
{
    static char buf[256];
    struct fanout_xml_elem e;
    if (!fanout_xml_find(doc, strlen(doc), name, ff, &e))
        return "<absent>";
    if (!e.closed)
        return "<open>";
    size_t n = fanout_xml_text(e.content, e.content_len, tf, buf, sizeof buf);
    ck_assert_uint_lt(n, sizeof buf);
    return buf;
}

START_TEST(finds_elements)
{
    const char *doc = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"x\">"
                      "<Errors><Error><Type>Sender</Type><Code>Throttling</Code>"
                      "<Message>Rate exceeded</Message></Error></Errors>"
                      "<RequestId>r-1</RequestId></ErrorResponse>";
    ck_assert_str_eq(s_text(doc, "Code", 0, 0), "Throttling");
    ck_assert_str_eq(s_text(doc, "Message", 0, 0), "Rate exceeded");
    ck_assert_str_eq(s_text(doc, "RequestId", 0, 0), "r-1");
    /* <Error> is not <Errors>, and the other way round */
    struct fanout_xml_elem e;
    ck_assert_int_eq(fanout_xml_find(doc, strlen(doc), "Error", 0, &e), 1);
    ck_assert(strncmp(e.content, "<Type>", 6) == 0);
    ck_assert_int_eq(fanout_xml_find(doc, strlen(doc), "Err", 0, &e), 0);
    ck_assert_int_eq(fanout_xml_find(doc, strlen(doc), "Nope", 0, &e), 0);
    ck_assert_int_eq(fanout_xml_find(doc, strlen(doc), "", 0, &e), 0);
    /* after: the scan goes on past the element */
    const char *list = "<m><Id>1</Id></m><m><Id>2</Id></m><m/>";
    size_t n = strlen(list), at = 0;
    const char *want[] = {"<Id>1</Id>", "<Id>2</Id>", ""};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fanout_xml_find(list + at, n - at, "m", 0, &e), 1);
        ck_assert_int_eq(e.closed, 1);
        ck_assert_uint_eq(e.content_len, strlen(want[i]));
        ck_assert(memcmp(e.content, want[i], e.content_len) == 0);
        at += e.after;
    }
    ck_assert_int_eq(fanout_xml_find(list + at, n - at, "m", 0, &e), 0);
}
END_TEST

START_TEST(attributes_and_prefixes)
{
    const char *doc =
        "<a:Root xmlns:a=\"urn:x\"><a:Code kind='a>b' x=\"<Code>\">C1</a:Code>"
        "<Code>C2</Code ></a:Root>";
    /* exact name: the prefixed one is not "Code" */
    ck_assert_str_eq(s_text(doc, "Code", 0, 0), "C2");
    ck_assert_str_eq(s_text(doc, "Code", FANOUT_XML_ANY_PREFIX, 0), "C1");
    ck_assert_str_eq(s_text(doc, "a:Code", 0, 0), "C1");
    /* the end tag must carry the same prefix */
    ck_assert_str_eq(s_text("<a:X>v</X>", "X", FANOUT_XML_ANY_PREFIX, 0), "<open>");
    ck_assert_str_eq(s_text("<X/>", "X", 0, 0), "");
    ck_assert_str_eq(s_text("<X a=\"1\" />", "X", 0, 0), "");
    ck_assert_str_eq(s_text("<X\n>v</X\t>", "X", 0, 0), "v");
}
END_TEST

START_TEST(nested_same_name)
{
    const char *doc = "<member><member>in</member><Id>7</Id></member><Id>8</Id>";
    struct fanout_xml_elem e;
    ck_assert_int_eq(fanout_xml_find(doc, strlen(doc), "member", 0, &e), 1);
    ck_assert_int_eq(e.closed, 1);
    ck_assert_uint_eq(e.content_len, strlen("<member>in</member><Id>7</Id>"));
    ck_assert_str_eq(s_text(doc, "Id", 0, 0), "7");
    /* a self-closed inner one does not count */
    ck_assert_str_eq(s_text("<a>x<a/>y</a>", "a", 0, 0), "xy");
    /* an inner one left open leaves the outer open */
    ck_assert_str_eq(s_text("<a><a>x</a>", "a", 0, 0), "<open>");
}
END_TEST

START_TEST(skips_comments_and_cdata)
{
    ck_assert_str_eq(s_text("<!-- <Code>no</Code> --><Code>yes</Code>", "Code", 0, 0),
                     "yes");
    ck_assert_str_eq(s_text("<![CDATA[<Code>no</Code>]]><Code>yes</Code>", "Code", 0, 0),
                     "yes");
    ck_assert_str_eq(s_text("<!DOCTYPE x><?pi <Code>?><Code>yes</Code>", "Code", 0, 0),
                     "yes");
    /* an end tag inside CDATA or a comment does not close */
    ck_assert_str_eq(s_text("<M><![CDATA[a</M>b]]></M>", "M", 0, 0), "a</M>b");
    ck_assert_str_eq(s_text("<M>a<!-- </M> -->b</M>", "M", 0, 0), "ab");
}
END_TEST

START_TEST(text_decoding)
{
    char out[64];
    const char *t = "a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;&#x20AC;";
    ck_assert_uint_eq(fanout_xml_text(t, strlen(t), 0, out, sizeof out), 21);
    ck_assert_str_eq(out, "a <b> & \"c\" 'd' AB\xe2\x82\xac");
    /* unknown, malformed or out-of-range references */
    t = "&nbsp; &# ; &#xZZ; &#0; &#x110000; &#xD800; &#123456789; &";
    fanout_xml_text(t, strlen(t), 0, out, sizeof out);
    ck_assert_str_eq(out, "&nbsp; &# ; &#xZZ; ? ? ? &#123456789; &");
    /* CDATA taken as is; tags dropped; trimming */
    t = "  x<![CDATA[&lt; <b>]]><i>y</i>  ";
    fanout_xml_text(t, strlen(t), 0, out, sizeof out);
    ck_assert_str_eq(out, "  x&lt; <b>y  ");
    fanout_xml_text(t, strlen(t), FANOUT_XML_TRIM, out, sizeof out);
    ck_assert_str_eq(out, "x&lt; <b>y");
    t = "\n <![CDATA[ k ]]>\t";
    fanout_xml_text(t, strlen(t), FANOUT_XML_TRIM, out, sizeof out);
    ck_assert_str_eq(out, " k ");
    /* a CDATA section cut off runs to the end */
    t = "<![CDATA[abc]]";
    fanout_xml_text(t, strlen(t), 0, out, sizeof out);
    ck_assert_str_eq(out, "abc]]");
}
END_TEST

START_TEST(truncation)
{
    char out[5];
    memset(out, 'X', sizeof out);
    ck_assert_uint_eq(fanout_xml_text("abcdefgh", 8, 0, out, sizeof out), 8);
    ck_assert_str_eq(out, "abcd");
    ck_assert_uint_eq(fanout_xml_text("&#x20AC;&#x20AC;", 16, 0, out, sizeof out), 6);
    ck_assert_uint_eq(strlen(out), 4);
    ck_assert_uint_eq(fanout_xml_text("abc", 3, 0, NULL, 0), 3);
    ck_assert_uint_eq(fanout_xml_text(NULL, 3, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    /* field: absent, open, present, cut */
    const char *doc = "<R><A>hello world</A><B>x";
    char f[6] = "zz";
    ck_assert_int_eq(fanout_xml_field(doc, strlen(doc), "C", 0, 0, f, sizeof f), -1);
    ck_assert_str_eq(f, "");
    ck_assert_int_eq(fanout_xml_field(doc, strlen(doc), "B", 0, 0, f, sizeof f), -1);
    ck_assert_int_eq(fanout_xml_field(doc, strlen(doc), "A", 0, 0, f, sizeof f), 11);
    ck_assert_str_eq(f, "hello");
    /* an element cut off in its start tag is not found; in its content it
     * is found open */
    struct fanout_xml_elem e;
    ck_assert_int_eq(fanout_xml_find("<A x=\"1>", 8, "A", 0, &e), 0);
    ck_assert_int_eq(fanout_xml_find("<A>abc</A", 9, "A", 0, &e), 1);
    ck_assert_int_eq(e.closed, 0);
    ck_assert_uint_eq(e.content_len, 6);
    ck_assert_uint_eq(e.after, 9);
}
END_TEST

START_TEST(hostile_input)
{
    /* never past n: the bytes after the range are not read (a copy of
     * exactly n bytes, so valgrind / ASan see a read past it) */
    const char *docs[] = {"<",         "<A",      "<A>",    "</",    "<!--",
                          "<![CDATA[", "<?",      "<A>&",   "<A>&#", "<A>&#x1",
                          "<A>&amp",   "<A><!--", "<A></A", "<A x='"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        size_t n = strlen(docs[i]);
        char *p = malloc(n);
        memcpy(p, docs[i], n);
        struct fanout_xml_elem e;
        if (fanout_xml_find(p, n, "A", 0, &e)) {
            ck_assert_uint_le(e.after, n);
            ck_assert(e.content >= p && e.content + e.content_len <= p + n);
        }
        char out[16];
        ck_assert_uint_le(fanout_xml_text(p, n, FANOUT_XML_TRIM, out, sizeof out), n);
        free(p);
    }
    /* deep nesting and many unclosed tags: linear, no recursion */
    size_t depth = 100000;
    char *deep = malloc(depth * 3 + 16);
    size_t k = 0;
    for (size_t i = 0; i < depth; i++) {
        memcpy(deep + k, "<a>", 3);
        k += 3;
    }
    memcpy(deep + k, "<b>v</b>", 8);
    k += 8;
    struct fanout_xml_elem e;
    ck_assert_int_eq(fanout_xml_find(deep, k, "b", 0, &e), 1);
    ck_assert_int_eq(e.closed, 1);
    ck_assert_int_eq(fanout_xml_find(deep, k, "a", 0, &e), 1);
    ck_assert_int_eq(e.closed, 0);
    free(deep);
    /* NUL bytes inside are data */
    const char nul[] = "<A>x\0y</A>";
    ck_assert_int_eq(fanout_xml_find(nul, sizeof nul - 1, "A", 0, &e), 1);
    ck_assert_uint_eq(e.content_len, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xml");
    TCase *t = tcase_create("find");
    tcase_add_test(t, finds_elements);
    tcase_add_test(t, attributes_and_prefixes);
    tcase_add_test(t, nested_same_name);
    tcase_add_test(t, skips_comments_and_cdata);
    suite_add_tcase(s, t);
    t = tcase_create("text");
    tcase_add_test(t, text_decoding);
    tcase_add_test(t, truncation);
    tcase_add_test(t, hostile_input);
    suite_add_tcase(s, t);
    return fanout_check_run(s);
}
