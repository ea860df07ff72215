/*
 * fanout byte tests 8 at a time ("SIMD within a register"), shared by the
 * text scanners and escapers that skip runs of plain bytes: each returns
 * the bytes of `v` (8 read from memory with memcpy) that match, each marked
 * by its high bit. A borrow can mark a byte above a marked one, never
 * below: "any mark" and "the lowest mark" are exact.
 *
 * Part of the SDK library (fanout-sdk); header only.
 */
#ifndef FANOUT_SWAR_H
#define FANOUT_SWAR_H

#include <stdint.h>

/* FANOUT_HAVE_SSE2 (0 or 1): the SSE2 paths are built (x86-64's
 * baseline). FANOUT_HAVE_X86_SIMD: the SSSE3 and AVX2 paths chosen at run
 * time are built. Both 0 with FANOUT_PORTABLE defined (meson -Dsimd=false):
 * the portable paths, those arm64 takes, then run on x86 too, so that its
 * tests exercise them. */
#if defined(__SSE2__) && !defined(FANOUT_PORTABLE)
#define FANOUT_HAVE_SSE2 1
#else
#define FANOUT_HAVE_SSE2 0
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(FANOUT_PORTABLE)
#define FANOUT_HAVE_X86_SIMD 1
#else
#define FANOUT_HAVE_X86_SIMD 0
#endif

#define FANOUT_SWAR_ONES  0x0101010101010101ULL
#define FANOUT_SWAR_HIGHS 0x8080808080808080ULL
#define FANOUT_SWAR_LOWS  0x7F7F7F7F7F7F7F7FULL

/* The bytes below `n` (n at most 0x80). */
static inline uint64_t fanout_swar_below(uint64_t v, unsigned n)
{
    return (v - FANOUT_SWAR_ONES * n) & ~v & FANOUT_SWAR_HIGHS;
}

/* The bytes equal to `c`. */
static inline uint64_t fanout_swar_eq(uint64_t v, unsigned char c)
{
    return fanout_swar_below(v ^ (FANOUT_SWAR_ONES * c), 1);
}

/* The bytes of 0x80 and above. */
static inline uint64_t fanout_swar_high(uint64_t v)
{
    return v & FANOUT_SWAR_HIGHS;
}

/* Each byte's high bit set when its 7 low bits are not below 0x20, not
 * '"' and not '\\': no carry crosses into the next byte. */
static inline uint64_t fanout_swar_plain7(uint64_t v)
{
    const uint64_t low = v & FANOUT_SWAR_LOWS;
    return (low + FANOUT_SWAR_ONES * 0x60) &
           ((low ^ FANOUT_SWAR_ONES * '"') + FANOUT_SWAR_LOWS) &
           ((low ^ FANOUT_SWAR_ONES * '\\') + FANOUT_SWAR_LOWS);
}

/* The bytes that end a run of plain JSON string text: '"', '\\', below
 * 0x20, 0x80 and above. Exact (fanout_swar_plain7): any mark may be the
 * first. */
static inline uint64_t fanout_swar_jstop(uint64_t v)
{
    return (v | ~fanout_swar_plain7(v)) & FANOUT_SWAR_HIGHS;
}

/* The bytes a JSON string must escape: '"', '\\', below 0x20 (not those
 * of 0x80 and above). Exact as fanout_swar_jstop. */
static inline uint64_t fanout_swar_jesc(uint64_t v)
{
    return ~(v | fanout_swar_plain7(v)) & FANOUT_SWAR_HIGHS;
}

/* The bytes that are '"' or '\\', exact as fanout_swar_jstop. */
static inline uint64_t fanout_swar_quote(uint64_t v)
{
    const uint64_t low = v & FANOUT_SWAR_LOWS;
    const uint64_t other = ((low ^ FANOUT_SWAR_ONES * '"') + FANOUT_SWAR_LOWS) &
                           ((low ^ FANOUT_SWAR_ONES * '\\') + FANOUT_SWAR_LOWS);
    return ~(other | v) & FANOUT_SWAR_HIGHS;
}

/* Where the first byte in memory that `marks` (not 0) flags is, 0 to 7,
 * on either byte order: for exact marks (fanout_swar_jstop,
 * fanout_swar_jesc, fanout_swar_quote); those of the tests above only on a little-endian
 * machine, where their lowest mark is exact. */
static inline unsigned fanout_swar_first(uint64_t marks)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (unsigned)__builtin_clzll(marks) / 8;
#else
    return (unsigned)__builtin_ctzll(marks) / 8;
#endif
}

#endif
