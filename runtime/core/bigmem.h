/* bigmem.h - large buffers that are recycled instead of going back to the OS at every free.
 *
 * A compile of baked weights writes tens of megabytes into fresh memory (the program's copy of
 * the weight files, the plan's fp32 weights, the activation arena), and fresh memory costs a page
 * fault per 4 KiB page: on the development VM that was most of a static Stories110M compile. A
 * research loop frees the previous kernels and compiles the next ones with the same shapes, so
 * freed buffers of 1 MiB and more are kept (most recently freed first, up to a limit) and handed
 * to the next request of about their size. Kept buffers stay mapped and resident: marking them
 * MADV_FREE cost a TLB shootdown per free, which slowed every other thread of the process (a
 * foreground eval loop lost 10-15 % to a background compile's frees), so the bound is the limit.
 *
 * Buffers are 64-byte aligned and uninitialised. Thread-safe. Sanitizer builds cache nothing, so
 * a use after free still faults. */
#ifndef ANE_CORE_BIGMEM_H
#define ANE_CORE_BIGMEM_H

#include <stddef.h>

#define BIGMEM_ALIGN 64

void *bigmem_alloc(size_t bytes);     /* NULL when out of memory */
void bigmem_free(void *p);            /* NULL-safe; p must come from bigmem_alloc */
/* Bytes of freed buffers kept for reuse at most (default 1 GiB, or a quarter of physical memory
 * if that is less); returns the previous limit. 0 caches nothing. Lowering it releases buffers
 * at once. */
size_t bigmem_limit(size_t bytes);
size_t bigmem_cached(void);           /* bytes now kept */
void bigmem_trim(void);               /* give every kept buffer back to the OS */

#endif
