/* The base64 decoder's SIMD part (x86-64: SSSE3, AVX2 when the CPU has
 * it, chosen at run time): the alphabet characters at the start of a text,
 * 16 or 32 at a time, in the way of W. Muła and D. Lemire ("Faster Base64
 * Encoding and Decoding Using AVX2 Instructions", 2018) as aklomp/base64
 * writes it: two nibble tables tell every byte of the alphabet from every
 * other, a third gives what to add to a character for its value. A block
 * with any other byte ('=', whitespace, anything) is left to the scalar
 * decoder (util.c), which decodes it and names the offending offset, so the
 * results and errors are those of the scalar decoder alone. */
#include "common/base64_simd.h"

#include "fanout/swar.h"

#if FANOUT_HAVE_X86_SIMD
#include <immintrin.h>

#define S_TARGET(t) __attribute__((target(t)))

/* per low nibble / high nibble: bits that meet only for non-alphabet bytes */
#define S_LUT_LO                                                                           \
    0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B,    \
        0x1B, 0x1A
#define S_LUT_HI                                                                           \
    0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,    \
        0x10, 0x10
/* what to add per high nibble ('/' apart): '+' 62, '0'-'9' 52.., 'A'.. 0,
 * 'a'.. 26 */
#define S_LUT_ROLL 0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0
/* the 24 bits of each 4 characters' values, bytes in output order */
#define S_PACK 2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1

S_TARGET("ssse3")
static size_t s_ssse3(const uint8_t *in, size_t n, uint8_t *out)
{
    const __m128i lut_lo = _mm_setr_epi8(S_LUT_LO), lut_hi = _mm_setr_epi8(S_LUT_HI),
                  lut_roll = _mm_setr_epi8(S_LUT_ROLL), pack = _mm_setr_epi8(S_PACK),
                  mask_2f = _mm_set1_epi8(0x2f);
    size_t i = 0;
    uint8_t *o = out;
    for (; n - i >= 16; i += 16, o += 12) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        __m128i hi_nib = _mm_and_si128(_mm_srli_epi32(v, 4), mask_2f);
        __m128i lo_nib = _mm_and_si128(v, mask_2f);
        __m128i hi = _mm_shuffle_epi8(lut_hi, hi_nib);
        __m128i lo = _mm_shuffle_epi8(lut_lo, lo_nib);
        if (_mm_movemask_epi8(_mm_cmpgt_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128())))
            break;
        __m128i roll =
            _mm_shuffle_epi8(lut_roll, _mm_add_epi8(_mm_cmpeq_epi8(v, mask_2f), hi_nib));
        v = _mm_add_epi8(v, roll);
        v = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
        v = _mm_madd_epi16(v, _mm_set1_epi32(0x00011000));
        _mm_storeu_si128((__m128i *)(void *)o, _mm_shuffle_epi8(v, pack));
    }
    return i;
}

S_TARGET("avx2")
static size_t s_avx2(const uint8_t *in, size_t n, uint8_t *out)
{
    const __m256i lut_lo = _mm256_setr_epi8(S_LUT_LO, S_LUT_LO),
                  lut_hi = _mm256_setr_epi8(S_LUT_HI, S_LUT_HI),
                  lut_roll = _mm256_setr_epi8(S_LUT_ROLL, S_LUT_ROLL),
                  pack = _mm256_setr_epi8(S_PACK, S_PACK), mask_2f = _mm256_set1_epi8(0x2f),
                  lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
    size_t i = 0;
    uint8_t *o = out;
    /* a 32-byte store for 24 bytes: 4 characters more kept in hand than
     * read, so the 8 bytes past stay within fanout_base64_decoded_max */
    for (; n - i >= 36; i += 32, o += 24) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(in + i));
        __m256i hi_nib = _mm256_and_si256(_mm256_srli_epi32(v, 4), mask_2f);
        __m256i lo_nib = _mm256_and_si256(v, mask_2f);
        __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nib);
        __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nib);
        if (_mm256_movemask_epi8(
                _mm256_cmpgt_epi8(_mm256_and_si256(lo, hi), _mm256_setzero_si256())))
            break;
        __m256i roll = _mm256_shuffle_epi8(
            lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(v, mask_2f), hi_nib));
        v = _mm256_add_epi8(v, roll);
        v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
        v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
        v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pack), lanes);
        _mm256_storeu_si256((__m256i *)(void *)o, v);
    }
    return i + s_ssse3(in + i, n - i, o);
}

static size_t s_none(const uint8_t *in, size_t n, uint8_t *out)
{
    (void)in;
    (void)n;
    (void)out;
    return 0;
}

typedef size_t (*s_decode_fn)(const uint8_t *, size_t, uint8_t *);

static s_decode_fn s_pick(void)
{
    static s_decode_fn fn;
    s_decode_fn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (!f) {
        __builtin_cpu_init();
        f = __builtin_cpu_supports("avx2")    ? s_avx2
            : __builtin_cpu_supports("ssse3") ? s_ssse3
                                              : s_none;
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    return f;
}

size_t fanout_base64_decode_simd(const uint8_t *in, size_t n, uint8_t *out)
{
    return s_pick()(in, n, out);
}

int fanout_base64_simd_has(enum fanout_b64_isa isa)
{
    __builtin_cpu_init();
    return isa == FANOUT_B64_SCALAR ||
           (isa == FANOUT_B64_SSSE3 && __builtin_cpu_supports("ssse3")) ||
           (isa == FANOUT_B64_AVX2 && __builtin_cpu_supports("avx2"));
}

size_t fanout_base64_decode_simd_isa(enum fanout_b64_isa isa, const uint8_t *in, size_t n,
                                     uint8_t *out)
{
    if (!fanout_base64_simd_has(isa))
        return 0;
    return isa == FANOUT_B64_AVX2    ? s_avx2(in, n, out)
           : isa == FANOUT_B64_SSSE3 ? s_ssse3(in, n, out)
                                     : 0;
}

#else

size_t fanout_base64_decode_simd(const uint8_t *in, size_t n, uint8_t *out)
{
    (void)in;
    (void)n;
    (void)out;
    return 0;
}

int fanout_base64_simd_has(enum fanout_b64_isa isa)
{
    return isa == FANOUT_B64_SCALAR;
}

size_t fanout_base64_decode_simd_isa(enum fanout_b64_isa isa, const uint8_t *in, size_t n,
                                     uint8_t *out)
{
    (void)isa;
    return fanout_base64_decode_simd(in, n, out);
}

#endif
