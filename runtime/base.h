/*
 * base.h -- the bottom of the runtime: assertions and the page size.
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

#endif
