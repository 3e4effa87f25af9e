/*
 * wkinds.c -- the first-write table of --write-kinds (API: wkinds.h).
 * One byte per page of the ranges given, in pages of its own (mmap), so
 * noting writes no heap page; a note finds its page by binary search over
 * the ranges and keeps only the first kind.  The write sites are marked
 * in the runtime's files with RT_WK_NOTE / RT_WK_SPAN: object.h
 * (refcounts), gc.c (links, gc_refs), mem.c (allocator metadata, new
 * blocks), and the containers' mutators (payload).
 */
#include "wkinds.h"

#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "mem.h"

#ifdef RT_WRITE_KINDS
uint8_t *rt__wk_on;
#endif

static struct {
    mem_range_t *ranges;        /* sorted, disjoint */
    size_t *base;               /* index of each range's first page */
    size_t n;
    uint8_t *table;
    size_t npages;
    size_t map_len;
    void *map;
} K;

int
rt_wk_built(void)
{
#ifdef RT_WRITE_KINDS
    return 1;
#else
    return 0;
#endif
}

const char *
rt_wk_name(int kind)
{
    static const char *const names[RT_WK_NKINDS] = {
        "other", "refcount", "gc", "payload", "new", "allocator"
    };
    return kind >= 0 && kind < RT_WK_NKINDS ? names[kind] : "?";
}

void
rt_wk_stop(void)
{
#ifdef RT_WRITE_KINDS
    rt__wk_on = NULL;
#endif
    if (K.map)
        munmap(K.map, K.map_len);
    memset(&K, 0, sizeof K);
}

int
rt_wk_start(const mem_range_t *ranges, size_t n)
{
    size_t psize = rt__page_size(), pages = 0;
    if (!rt_wk_built() || (ranges == NULL && n > 0))
        return -1;
    rt_wk_stop();
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].end < ranges[i].start
            || (i > 0 && ranges[i].start < ranges[i - 1].end)
            || ranges[i].start % psize || ranges[i].end % psize)
            return -1;
        pages += (ranges[i].end - ranges[i].start) / psize;
    }
    size_t len = n * (sizeof(mem_range_t) + sizeof(size_t)) + pages + 1;
    len = (len + psize - 1) & ~(psize - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    K.map = p;
    K.map_len = len;
    K.ranges = p;
    K.base = (size_t *)(void *)(K.ranges + n);
    K.table = (uint8_t *)(K.base + n);
    K.n = n;
    K.npages = pages;
    size_t b = 0;
    for (size_t i = 0; i < n; i++) {
        K.ranges[i] = ranges[i];
        K.base[i] = b;
        b += (ranges[i].end - ranges[i].start) / psize;
    }
#ifdef RT_WRITE_KINDS
    rt__wk_on = K.table;
#endif
    return 0;
}

const uint8_t *
rt_wk_table(size_t *npages)
{
    if (npages)
        *npages = K.npages;
    return K.table;
}

#ifdef RT_WRITE_KINDS
void
rt__wk_note(const void *p, int kind)
{
    uintptr_t a = (uintptr_t)p;
    size_t lo = 0, hi = K.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a < K.ranges[mid].start) {
            hi = mid;
        } else if (a >= K.ranges[mid].end) {
            lo = mid + 1;
        } else {
            size_t i = K.base[mid] + (a - K.ranges[mid].start)
                                     / rt__page_size();
            if (K.table[i] == 0)
                K.table[i] = (uint8_t)kind;
            return;
        }
    }
}

void
rt__wk_span(const void *p, size_t len, int kind)
{
    uintptr_t a = (uintptr_t)p, ps = rt__page_size();
    if (len == 0)
        return;
    for (uintptr_t q = a & ~(ps - 1); q < a + len; q += ps)
        rt__wk_note((const void *)(q < a ? a : q), kind);
}
#endif
