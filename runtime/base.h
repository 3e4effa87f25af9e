/*
 * base.h -- the bottom of the runtime: assertions, the page size, the
 * two clocks the runtime reads, a growable stack of pointers and fault
 * injection.
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
#include <stdint.h>

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
 * Clocks.  The layers above use common/clock.h; the runtime may include
 * nothing outside runtime/, so these are its own copy of the two it
 * needs: CLOCK_MONOTONIC in ns (collection and teardown times) and the
 * process's minor faults (getrusage ru_minflt, teardown's faults).
 */
uint64_t rt__now_ns(void);
long rt__minflt(void);

/*
 * A growable stack of pointers, for the walks over the heap (immortalize,
 * rt_heap_walk, finalization's last pass).  Start from RT_PTRSTACK_INIT.
 * A push that cannot grow the array returns -1 and sets oom, which stays
 * set: the walk's owner checks it once at the end.
 */
typedef struct rt__ptrstack {
    void **v;
    size_t n, cap;
    int oom;
} rt__ptrstack_t;

#define RT_PTRSTACK_INIT { NULL, 0, 0, 0 }

int rt__ptrstack_push(rt__ptrstack_t *s, void *p);
void rt__ptrstack_fini(rt__ptrstack_t *s);     /* frees v; s reusable */

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
