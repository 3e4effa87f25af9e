/*
 * base.h -- the bottom of the runtime: assertions, the page size and
 * fault injection.
 * Internal (RT_BUILD_CORE) like internal.h, but it includes no other
 * runtime header, so the allocator (mem.c) can use it without seeing the
 * objects it serves.  Implementation: base.c.
 */
#ifndef COWLAB_BASE_H
#define COWLAB_BASE_H

#ifndef RT_BUILD_CORE
#error "base.h is for the runtime's own files (define RT_BUILD_CORE)"
#endif

#include <stddef.h>

/* Abort with the failed expression; used by RT_ASSERT. */
_Noreturn void rt_assert_fail(const char *expr, const char *file, int line);
#ifdef RT_DEBUG
#define RT_ASSERT(c) ((c) ? (void)0 : rt_assert_fail(#c, __FILE__, __LINE__))
#else
#define RT_ASSERT(c) ((void)0)
#endif

/* The system page size, cached. */
size_t rt__page_size(void);

/*
 * Fault injection (mem_fail_after() sets it): 1 if the allocation being
 * made must fail.  Every allocation the runtime makes asks, so that a test
 * reaches each out-of-memory path: object memory (pools and large blocks,
 * or malloc() under RT_MALLOC_BYPASS) and the runtime's working memory
 * (rt__scratch_realloc).
 */
int rt__fail_now(void);
/* Arm it: the n-th allocation from now fails (n >= 1); 0 disarms. */
void rt__fail_after(long n);
/* realloc() for working memory outside the heap (stacks, range lists):
 * NULL when out of memory or when fault injection says so. */
void *rt__scratch_realloc(void *p, size_t n);

#endif
