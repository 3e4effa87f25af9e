/*
 * base.c -- what every runtime file may call and that depends on no other
 * runtime file: the assertion failure path, the system page size and the
 * fault-injection countdown.
 * The allocator (mem.c) sits below the objects, so these live here rather
 * than in object.c.  Declared in base.h.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

_Noreturn void
rt_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

size_t
rt__page_size(void)
{
    static size_t pg;
    if (pg == 0) {
        long v = sysconf(_SC_PAGESIZE);
        pg = v > 0 ? (size_t)v : 4096;
    }
    return pg;
}

static long fail_countdown;         /* > 0: allocations until one fails */

void
rt__fail_after(long n)
{
    fail_countdown = n > 0 ? n : 0;
}

int
rt__fail_now(void)
{
    return fail_countdown > 0 && --fail_countdown == 0;
}

void *
rt__scratch_realloc(void *p, size_t n)
{
    if (rt__fail_now())
        return NULL;
    return realloc(p, n);
}
