/* The SIMD part of the base64 decoder (fanout_base64_decode in util.c),
 * x86-64 only: elsewhere it decodes nothing and the scalar loop does it
 * all. */
#ifndef FANOUT_BASE64_SIMD_H
#define FANOUT_BASE64_SIMD_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the longest prefix of in[0..n) made of whole blocks (16 or 32
 * characters) of the alphabet A-Z a-z 0-9 + / only, and returns its length
 * (a multiple of 16; 0 without SSSE3). Writes the prefix's bytes to `out`
 * and up to 8 bytes past them, never at or past out + n / 4 * 3 + 5: the
 * caller passes n at most its text's length minus 4 (the last quad, which
 * may have padding, stays the scalar loop's), so this stays within
 * fanout_base64_decoded_max of the whole text. Each block's bytes are stored
 * after it is read, below its end: `out` may be `in` (decoding in place). The best
 * instruction set the CPU has is chosen at the first call. */
size_t fanout_base64_decode_simd(const uint8_t *in, size_t n, uint8_t *out);

/* The same with a given instruction set (for tests: each against the
 * scalar decoder); 0 when the CPU does not have it. */
enum fanout_b64_isa { FANOUT_B64_SCALAR, FANOUT_B64_SSSE3, FANOUT_B64_AVX2 };
int fanout_base64_simd_has(enum fanout_b64_isa isa);
size_t fanout_base64_decode_simd_isa(enum fanout_b64_isa isa, const uint8_t *in, size_t n,
                                     uint8_t *out);

#endif
