/*
** fuzz_input.h: the fuzzers' reading of their input (tests/fuzz): bytes
** taken from the front, big-endian, as zeros once the input is used up.
*/
#ifndef IMALLOC_TESTS_FUZZ_INPUT_H
#define IMALLOC_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct { const uint8_t *p; size_t n; } Input;

static inline uint8_t u8(Input *in) {
  uint8_t v;
  if (in->n == 0) return 0;
  v = *in->p++;
  in->n--;
  return v;
}

static inline uint16_t u16(Input *in) {
  uint16_t hi = u8(in);
  return (uint16_t)((hi << 8) | u8(in));
}

static inline uint64_t u64(Input *in) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | u8(in);
  return v;
}

#endif
