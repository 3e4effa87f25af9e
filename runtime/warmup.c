/*
 * warmup.c -- rt_warmup(), the master's last work on its heap before it
 * forks (--warmup), after Ruby 3.3's Process.warmup: everything a worker
 * would otherwise do to the shared heap for the first time, and copy, is
 * done once in the parent, and what is free is given back.
 *
 * The steps and what each figure of rt_warmup_t counts:
 *   1. collected  gc_collect(oldest): the unreachable objects it found.
 *   2. promoted   the tracked objects in generations 0 and 1 just before
 *                 that collection.  Nothing else is needed to promote
 *                 them: CPython's full collection merges the younger
 *                 generations into the oldest and its survivors stay
 *                 there, so afterwards generations 0 and 1 are empty.
 *                 The figure counts them all, including those the
 *                 collection then found unreachable (also in collected)
 *                 and the tuples and dicts it untracked.
 *   3. hashes     strs reached by the heap walk whose hash was not cached
 *                 yet (a worker's first dict lookup with one as the key
 *                 would write it): computed and cached now.
 *   4. pools_released, arenas_released, pages_released: mem_trim().
 *   5. frozen     gc_freeze(), then gc_get_freeze_count(): every tracked
 *                 object, in the permanent generation that no collection
 *                 visits.
 *      ms         the wall time of the five steps.
 */
#include "object.h"

#include <string.h>

#include "internal.h"
#include "mem.h"

static void
cache_hash(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    size_t *hashes = arg;
    (void)block;
    (void)len;
    *hashes += (size_t)rt__str_cache_hash(o);
}

int
rt_warmup(rt_heap_t *h, rt_warmup_t *out)
{
    uint64_t t0 = rt__now_ns();
    int rc = -1;
    memset(out, 0, sizeof *out);
    /* 1 and 2 */
    size_t young = gc_gen_size(0) + gc_gen_size(1);
    long collected = gc_collect(GC_GEN_OLDEST);
    if (collected < 0)
        goto done;                  /* a collection is running */
    out->collected = collected;
    out->promoted = young;
    RT_ASSERT(gc_gen_size(0) == 0 && gc_gen_size(1) == 0);
    /* 3 */
    if (rt_heap_walk(h, cache_hash, &out->hashes) < 0)
        goto done;
    /* 4 */
    out->pages_released = mem_trim(&out->pools_released,
                                   &out->arenas_released);
    /* 5 */
    gc_freeze();
    out->frozen = gc_get_freeze_count();
    rc = 0;
done:
    out->ms = (double)(rt__now_ns() - t0) / 1e6;
    return rc;
}
