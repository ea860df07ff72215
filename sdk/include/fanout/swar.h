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

#endif
