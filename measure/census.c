/*
 * census.c -- which object types sit on the heap pages a worker copied.
 *
 * The master walks its own heap once (rt_heap_walk reads and never writes,
 * so the walk copies nothing) and, for each type, sets a bit for every
 * snapshot page that holds one of its blocks (object, item array, key
 * table).  For a worker, its copied-page bitmap from pagemap is then
 * intersected with each type's bitmap.  A page holding several types
 * counts for each: the columns say "pages holding them", not a partition.
 */
#include "census.h"
#include "identical.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TYPES 32

typedef struct {
    const rt_type_t *type;
    size_t objects;
    uint8_t *pages;             /* bitmap over snapshot page indices */
} tstat_t;

struct ms_census {
    const ps_snap_t *snap;
    size_t total;               /* pages in the snapshot ranges */
    size_t nranges;
    const ps_range_t *ranges;
    size_t *bases;              /* page index of each range's start */
    size_t pgsize;
    tstat_t t[MAX_TYPES];
    size_t ntypes;
    size_t objects;
    int oom;
};

static long
page_index(const ms_census_t *c, uintptr_t addr)
{
    size_t lo = 0, hi = c->nranges;
    while (lo < hi) {               /* ranges are sorted */
        size_t mid = (lo + hi) / 2;
        if (addr < c->ranges[mid].start)
            hi = mid;
        else if (addr >= c->ranges[mid].end)
            lo = mid + 1;
        else
            return (long)(c->bases[mid]
                          + (addr - c->ranges[mid].start) / c->pgsize);
    }
    return -1;
}

static void
on_block(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    ms_census_t *c = arg;
    tstat_t *t = NULL;
    const rt_type_t *kind = rt_kind(o);   /* instances: per class types */
    for (size_t i = 0; i < c->ntypes; i++)
        if (c->t[i].type == kind) {
            t = &c->t[i];
            break;
        }
    if (t == NULL) {
        if (c->ntypes == MAX_TYPES)
            return;
        t = &c->t[c->ntypes];
        t->type = kind;
        t->pages = calloc(c->total / 8 + 1, 1);
        if (t->pages == NULL) {
            c->oom = 1;
            return;
        }
        c->ntypes++;
    }
    /* The object's own block starts at most 32 bytes before it (gc head,
     * pre-header); its other blocks are allocations of their own. */
    if ((uintptr_t)block <= (uintptr_t)o
        && (uintptr_t)o - (uintptr_t)block <= 32)
        t->objects++;
    if (len == 0)
        len = 1;
    uintptr_t a = (uintptr_t)block, end = a + len;
    for (uintptr_t p = a & ~(uintptr_t)(c->pgsize - 1); p < end;
         p += c->pgsize) {
        long i = page_index(c, p);
        if (i >= 0 && ps_snap_present(c->snap, (size_t)i))
            t->pages[i / 8] |= (uint8_t)(1u << (i % 8));
    }
}

int
ms_census_build(ms_census_t **out, rt_heap_t *h, const ps_snap_t *snap)
{
    ms_census_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->snap = snap;
    c->total = ps_snap_total_pages(snap);
    c->ranges = ps_snap_ranges(snap, &c->nranges);
    c->pgsize = (size_t)sysconf(_SC_PAGESIZE);
    c->bases = calloc(c->nranges + 1, sizeof(size_t));
    if (c->bases == NULL) {
        free(c);
        return -ENOMEM;
    }
    for (size_t i = 0, b = 0; i < c->nranges; i++) {
        c->bases[i] = b;
        b += (c->ranges[i].end - c->ranges[i].start) / c->pgsize;
    }
    long n = rt_heap_walk(h, on_block, c);
    if (n < 0 || c->oom) {
        ms_census_free(c);
        return -ENOMEM;
    }
    c->objects = (size_t)n;
    *out = c;
    return 0;
}

size_t
ms_census_objects(const ms_census_t *c)
{
    return c->objects;
}

static size_t
popcount_and(const uint8_t *a, const uint8_t *b, size_t nbytes)
{
    size_t n = 0;
    for (size_t i = 0; i < nbytes; i++)
        n += (size_t)__builtin_popcount((unsigned)(b ? a[i] & b[i] : a[i]));
    return n;
}

int
ms_census_add(const ms_census_t *c, ms_csv_t *w, const ms_type_row_t *row,
              ps_pagemap_t *pm, pid_t ident_pid)
{
    size_t nbytes = c->total / 8 + 1, copied, nident;
    uint8_t *bits = calloc(nbytes, 1);
    uint8_t *ident = ident_pid > 0 ? calloc(nbytes, 1) : NULL;
    if (bits == NULL || (ident_pid > 0 && ident == NULL)) {
        free(bits);
        free(ident);
        return -ENOMEM;
    }
    int r = ps_copied_bitmap_fd(c->snap, pm, bits, &copied);
    if (r == 0 && ident != NULL)
        r = ms_identical_count(c->snap, bits, ident_pid, 0, ident, &nident);
    if (r < 0) {
        free(bits);
        free(ident);
        return r;
    }
    for (size_t i = 0; i < c->ntypes; i++) {
        const tstat_t *t = &c->t[i];
        ms_type_row_t tr = *row;
        tr.type = t->type->name;
        tr.objects = t->objects;
        tr.pages = popcount_and(t->pages, NULL, nbytes);
        tr.copied_pages = popcount_and(t->pages, bits, nbytes);
        tr.identical_pages = ident != NULL
            ? (double)popcount_and(t->pages, ident, nbytes) : MS_UNSET;
        ms_csv_add(w, &tr);
    }
    free(bits);
    free(ident);
    return 0;
}

void
ms_census_free(ms_census_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ntypes; i++)
        free(c->t[i].pages);
    free(c->bases);
    free(c);
}
