/* membw.h - a stream read of memory, for measuring the bandwidth bound of inference (benchmarks). */
#ifndef ANE_NN_MEMBW_H
#define ANE_NN_MEMBW_H

#include <stddef.h>
#include <stdint.h>

/* Read bytes [p, p + n) once with `threads` threads (1..64), each a contiguous share, folding the
 * 64-bit words into a checksum (so the reads cannot be optimised away). Returns the checksum. */
uint64_t nn_stream_read(const void *p, size_t n, int threads);

#endif
