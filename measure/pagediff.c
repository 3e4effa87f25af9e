/*
 * pagediff.c -- the differing words of copied pages, by object field;
 * see pagediff.h.
 *
 * The master walks its heap once (rt_heap_walk writes nothing) and keeps,
 * sorted by address, every block: an object's own block (starting at its
 * gc_head_t for a container) or its item array / key table.  For a
 * worker, each copied page that is not identical is read from the worker
 * and compared, 8 bytes at a time, with the master's page in place; a
 * differing word is looked up among the blocks (binary search) and named
 * by its offset in the object:
 *     < 0  gc_head     0..7  refcount     8..15  type     >= 16  body
 * or items for an item array or key table, allocator where the master's
 * heap has no live block.  Counting is per (field, type) pair: words,
 * pages with such a word, pages with nothing else.
 */
#include "pagediff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identical.h"

enum { F_REFCOUNT, F_TYPE, F_GC_HEAD, F_BODY, F_ITEMS, F_ALLOCATOR, NF };
static const char *const field_names[NF] = {
    "refcount", "type", "gc_head", "body", "items", "allocator"
};

#define MAX_TYPES 32

typedef struct {
    uintptr_t start;
    uint32_t len;
    uint8_t own;                /* the object's own block */
    uint8_t gc;                 /* it starts with a gc_head_t */
    uint8_t type;               /* index in types[] */
} block_t;

struct ms_pagediff {
    const ps_snap_t *snap;
    block_t *b;
    size_t n, cap;
    const rt_type_t *types[MAX_TYPES];
    size_t ntypes;
    int oom;
};

static int
type_index(ms_pagediff_t *d, const rt_type_t *t)
{
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->types[i] == t)
            return (int)i;
    if (d->ntypes == MAX_TYPES)
        return -1;
    d->types[d->ntypes] = t;
    return (int)d->ntypes++;
}

static void
on_block(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    ms_pagediff_t *d = arg;
    int t = type_index(d, o->type);
    if (t < 0 || len == 0 || len > UINT32_MAX)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 65536;
        block_t *nb = realloc(d->b, cap * sizeof *nb);
        if (nb == NULL) {
            d->oom = 1;
            return;
        }
        d->b = nb;
        d->cap = cap;
    }
    block_t *b = &d->b[d->n++];
    b->start = (uintptr_t)block;
    b->len = (uint32_t)len;
    b->gc = block == (const void *)((const char *)o - 16);
    b->own = b->gc || block == (const void *)o;
    b->type = (uint8_t)t;
}

static int
cmp_block(const void *a, const void *b)
{
    uintptr_t x = ((const block_t *)a)->start, y = ((const block_t *)b)->start;
    return x < y ? -1 : x > y;
}

int
ms_pagediff_build(ms_pagediff_t **out, rt_heap_t *h, const ps_snap_t *snap)
{
    ms_pagediff_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->snap = snap;
    if (rt_heap_walk(h, on_block, d) < 0 || d->oom) {
        ms_pagediff_free(d);
        return -ENOMEM;
    }
    qsort(d->b, d->n, sizeof *d->b, cmp_block);
    *out = d;
    return 0;
}

/* The block holding address a, or NULL. */
static const block_t *
find(const ms_pagediff_t *d, uintptr_t a)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {               /* first block starting after a */
        size_t mid = (lo + hi) / 2;
        if (d->b[mid].start <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const block_t *b = &d->b[lo - 1];
    return a < b->start + b->len ? b : NULL;
}

/* (field, type) pairs: type MAX_TYPES for "no type" (allocator). */
#define NPAIRS (NF * (MAX_TYPES + 1))

typedef struct {
    uint64_t words, up, down, pages, only;
} tally_t;

static size_t
classify(const ms_pagediff_t *d, uintptr_t a)
{
    const block_t *b = find(d, a);
    if (b == NULL)
        return (size_t)F_ALLOCATOR * (MAX_TYPES + 1) + MAX_TYPES;
    int f;
    if (!b->own) {
        f = F_ITEMS;
    } else {
        intptr_t off = (intptr_t)(a - b->start) - (b->gc ? 16 : 0);
        f = off < 0 ? F_GC_HEAD : off < 8 ? F_REFCOUNT : off < 16 ? F_TYPE
                                                                  : F_BODY;
    }
    return (size_t)f * (MAX_TYPES + 1) + b->type;
}

int
ms_pagediff_add(const ms_pagediff_t *d, ms_csv_t *w, const ms_diff_row_t *row,
                pid_t pid, const uint8_t *copied, const uint8_t *identical)
{
    size_t psize = (size_t)sysconf(_SC_PAGESIZE);
    size_t total = ps_snap_total_pages(d->snap);
    tally_t *t = calloc(NPAIRS, sizeof *t);
    uint8_t *seen = calloc(NPAIRS, 1);
    uint64_t *mine = malloc(psize);
    int r = 0;
    if (t == NULL || seen == NULL || mine == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < total; i++) {
        if (!((copied[i / 8] >> (i % 8)) & 1)
            || (identical != NULL && ((identical[i / 8] >> (i % 8)) & 1)))
            continue;
        uintptr_t addr = ps_snap_addr(d->snap, i);
        int e = ms_read_page(pid, addr, mine, psize);
        if (e == -EFAULT)
            continue;               /* unmapped since: nothing to compare */
        if (e < 0) {
            r = e;
            goto out;
        }
        const int64_t *theirs = (const int64_t *)addr;
        size_t kinds = 0, last = 0;
        memset(seen, 0, NPAIRS);
        for (size_t k = 0; k < psize / 8; k++) {
            if ((int64_t)mine[k] == theirs[k])
                continue;
            size_t c = classify(d, addr + 8 * k);
            t[c].words++;
            if ((int64_t)mine[k] > theirs[k])
                t[c].up++;
            else
                t[c].down++;
            if (!seen[c]) {
                seen[c] = 1;
                t[c].pages++;
                kinds++;
                last = c;
            }
        }
        if (kinds == 1)
            t[last].only++;
    }
    for (size_t c = 0; c < NPAIRS; c++) {
        if (t[c].words == 0)
            continue;
        ms_diff_row_t dr = *row;
        size_t ti = c % (MAX_TYPES + 1);
        dr.field = field_names[c / (MAX_TYPES + 1)];
        dr.type = ti < d->ntypes ? d->types[ti]->name : "";
        dr.words = t[c].words;
        dr.words_up = t[c].up;
        dr.words_down = t[c].down;
        dr.pages = t[c].pages;
        dr.pages_only = t[c].only;
        ms_csv_add(w, &dr);
    }
out:
    free(t);
    free(seen);
    free(mine);
    return r;
}

void
ms_pagediff_free(ms_pagediff_t *d)
{
    if (d == NULL)
        return;
    free(d->b);
    free(d);
}
