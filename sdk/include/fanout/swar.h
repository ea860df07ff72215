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
