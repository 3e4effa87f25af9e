/*
 * base.c -- what every runtime file may call and that depends on no other
 * runtime file: the assertion failure path and the system page size.
 * The allocator (mem.c) sits below the objects, so these live here rather
 * than in object.c.  Declared in internal.h.
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
