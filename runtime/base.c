/*
 * base.c -- what every runtime file may call and that depends on no other
 * runtime file: the assertion failure path, the system page size, the
 * runtime's clocks, its pointer stack and the fault-injection countdown.
 * The allocator (mem.c) sits below the objects, so these live here rather
 * than in object.c.  Declared in base.h.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
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

/* The same clocks as common/clock.c (clk_now_ns, clk_minflt): the runtime
 * cannot use common/, so it has this one copy of its own. */
uint64_t
rt__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long
rt__minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

int
rt__ptrstack_push(rt__ptrstack_t *s, void *p)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        void **v = rt__scratch_realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            s->oom = 1;
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return 0;
}

void
rt__ptrstack_fini(rt__ptrstack_t *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
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
