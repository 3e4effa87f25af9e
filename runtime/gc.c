/*
 * gc.c -- the generational cycle collector (CPython's gc module): what
 * every layout shares.  Thresholds and counts (700, 10, 10), the
 * long-lived-pending rule for full collections, CPython's free lists as
 * counts, callbacks around each collection, statistics, and the gc
 * module's API.  Where the per-object state lives, and so the passes of a
 * collection, is the layout's (gc_layout.h, chosen once at start-up from
 * --gc-layout): gc_inline.c (CPython's gc_head_t in front of the object),
 * gc_side.c (the same links in a side table), gc_bitmap.c (bits, no
 * links).  Every layout finds the same garbage: a differential test
 * (tests/check_designs.c) runs random graphs through all three.
 */
#include "gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_layout.h"

typedef struct {
    long threshold;
    long count;
} gen_t;

static struct {
    gen_t gens[GC_NGENS];
    int enabled;
    int collecting;
    size_t long_lived_total;        /* survivors of the last full collection */
    size_t long_lived_pending;      /* promoted to gen 2 since then */
    gc_genstats_t stats[GC_NGENS];
    gc_callback_fn cb;
    void *cb_arg;
    size_t gc_alive;                /* GC-able objects alive */
} G;

/* The layout in force (gc__init). */
static const gc_layout_ops_t *L = &gc__inline_ops;

/* ---- tracking --------------------------------------------------------- */

void
gc_track(rt_obj_t *o)
{
    L->track(o);
}

void
gc_untrack(rt_obj_t *o)
{
    L->untrack(o);
}

int
gc_is_tracked(const rt_obj_t *o)
{
    return L->is_tracked(o);
}

static void clear_freelists(void);

/* Collect generation gen and the younger ones; returns objects found
 * unreachable. */
static long
collect(int gen)
{
    uint64_t t0 = rt__now_ns();
    if (G.cb)
        G.cb(0, gen, 0, G.cb_arg);
    if (gen + 1 < GC_NGENS)
        G.gens[gen + 1].count++;
    for (int i = 0; i <= gen; i++)
        G.gens[i].count = 0;
    size_t survivors;
    long m = L->collect(gen, &survivors);
    if (gen == GC_NGENS - 2) {
        G.long_lived_pending += survivors;
    } else if (gen == GC_GEN_OLDEST) {
        G.long_lived_pending = 0;
        G.long_lived_total = survivors;
    }
    if (gen == GC_GEN_OLDEST)
        clear_freelists();
    G.stats[gen].collections++;
    G.stats[gen].collected += (size_t)m;
    G.stats[gen].time_ns += rt__now_ns() - t0;
    if (G.cb)
        G.cb(1, gen, m, G.cb_arg);
    return m;
}

/* The oldest generation over its threshold; a full collection also waits
 * until the objects promoted since the last one reach 25% of the
 * long-lived ones, so full collections stay linear overall. */
static void
collect_generations(void)
{
    for (int i = GC_NGENS - 1; i >= 0; i--) {
        if (G.gens[i].count > G.gens[i].threshold) {
            if (i == GC_NGENS - 1
                && G.long_lived_pending < G.long_lived_total / 4)
                continue;
            collect(i);
            break;
        }
    }
}

/* ---- free lists --------------------------------------------------------
 * CPython keeps freed lists, dicts and small tuples on free lists (80
 * lists, 80 dicts, 2000 tuples of each size 1..19) and hands them out again
 * without the collector seeing either: an object freed onto a free list
 * does not decrement generation 0's count, one taken from it does not
 * increment it (nor start a collection).  So a request's temporaries move
 * the count far less than their number, and collections come later.  A
 * full collection empties the free lists (clear_freelists), each object
 * then counted off as it is freed.  The model keeps the counts, not the
 * memory (its allocator reuses a freed block first anyway): they decide
 * when collections run, not which pages they write. */

#define FL_LISTS          80
#define FL_DICTS          80
#define FL_TUPLE_SIZES    20            /* sizes 1 .. 19 */
#define FL_TUPLES         2000

static struct {
    unsigned lists, dicts, tuples[FL_TUPLE_SIZES];
} FL;

/* The free list an object of this type and size goes to, and its room. */
static unsigned *
freelist_of(const rt_type_t *type, size_t ntuple, unsigned *cap)
{
    if (type == &rt_list_type) {
        *cap = FL_LISTS;
        return &FL.lists;
    }
    if (type == &rt_dict_type) {
        *cap = FL_DICTS;
        return &FL.dicts;
    }
    if (type == &rt_tuple_type && ntuple >= 1 && ntuple < FL_TUPLE_SIZES) {
        *cap = FL_TUPLES;
        return &FL.tuples[ntuple];
    }
    return NULL;
}

/* A tuple of n items is this many bytes after its gc head. */
#define TUPLE_ITEMS(size)  (((size) - sizeof(rt_obj_t) - sizeof(intptr_t)) \
                            / sizeof(rt_obj_t *))

static void
clear_freelists(void)
{
    unsigned n = FL.lists + FL.dicts;
    for (int i = 0; i < FL_TUPLE_SIZES; i++)
        n += FL.tuples[i];
    memset(&FL, 0, sizeof FL);
    G.gens[0].count = G.gens[0].count > (long)n ? G.gens[0].count - n : 0;
}

/* ---- allocation hooks ------------------------------------------------- */

rt_obj_t *
rt__gc_alloc(size_t size, rt_type_t *type)
{
    size_t pre = type->flags & RT_TPFLAG_PREHEADER ? RT_PREHEADER_SIZE : 0;
    char *block = rt__obj_alloc(pre + L->hdr + size);
    if (block == NULL)
        return NULL;
    if (pre)
        memset(block, 0, pre);
    rt_obj_t *o = (rt_obj_t *)(block + pre + L->hdr);
    if (L->obj_new(o) < 0) {
        rt__obj_free(block);
        return NULL;
    }
    rt__obj_init(o, type);
    G.gc_alive++;
    unsigned cap, *fl = freelist_of(type, type == &rt_tuple_type
                                          ? TUPLE_ITEMS(size) : 0, &cap);
    if (fl != NULL && *fl > 0) {
        (*fl)--;                    /* off a free list: not counted */
        return o;
    }
    G.gens[0].count++;
    if (G.gens[0].count > G.gens[0].threshold && G.enabled
        && G.gens[0].threshold && !G.collecting) {
        G.collecting = 1;
        collect_generations();
        G.collecting = 0;
    }
    return o;
}

void
rt__gc_free(rt_obj_t *o)
{
    RT_ASSERT(!L->is_tracked(o));
    rt__heap->nobjects--;
    rt__heap->ndeallocs++;
    G.gc_alive--;
    unsigned cap, *fl = freelist_of(o->type, o->type == &rt_tuple_type
                                             ? rt_tuple_len(o) : 0, &cap);
    if (fl != NULL && *fl < cap)
        (*fl)++;                    /* onto a free list: not counted */
    else if (G.gens[0].count > 0)
        G.gens[0].count--;
    L->obj_free(o);
    rt__obj_free(rt__obj_block(o));
}

void
gc__init_static(rt_obj_t *o)
{
    L->init_static(o);
}

/* ---- the gc module's API ---------------------------------------------- */

void
gc__init(void)
{
    memset(&G, 0, sizeof(G));
    memset(&FL, 0, sizeof(FL));
    L = rt__mode.gc_layout == RT_GC_SIDE ? &gc__side_ops
        : rt__mode.gc_layout == RT_GC_BITMAP ? &gc__bitmap_ops
        : &gc__inline_ops;
    rt__mode.gc_hdr = L->hdr;
    L->init();
    G.gens[0].threshold = GC_THRESHOLD0_DEFAULT;
    G.gens[1].threshold = GC_THRESHOLD1_DEFAULT;
    G.gens[2].threshold = GC_THRESHOLD2_DEFAULT;
    G.enabled = 1;
}

void gc_enable(void) { G.enabled = 1; }
void gc_disable(void) { G.enabled = 0; }
int gc_isenabled(void) { return G.enabled; }

void
gc_set_threshold(long t0, long t1, long t2)
{
    G.gens[0].threshold = t0;
    G.gens[1].threshold = t1;
    G.gens[2].threshold = t2;
}

void
gc_get_threshold(long out[GC_NGENS])
{
    for (int i = 0; i < GC_NGENS; i++)
        out[i] = G.gens[i].threshold;
}

void
gc_get_count(long out[GC_NGENS])
{
    for (int i = 0; i < GC_NGENS; i++)
        out[i] = G.gens[i].count;
}

long
gc_collect(int gen)
{
    if (gen < 0 || gen >= GC_NGENS || G.collecting)
        return -1;
    G.collecting = 1;
    long n = collect(gen);
    G.collecting = 0;
    return n;
}

long
gc__collect_nofail(void)
{
    return gc_collect(GC_GEN_OLDEST);
}

void
gc_get_long_lived(size_t *pending, size_t *total)
{
    *pending = G.long_lived_pending;
    *total = G.long_lived_total;
}

void
gc_get_stats(gc_genstats_t out[GC_NGENS])
{
    memcpy(out, G.stats, sizeof(G.stats));
}

size_t
gc_gen_size(int gen)
{
    if (gen < 0 || gen >= GC_NGENS)
        return 0;
    return L->gen_size(gen);
}

size_t
gc__promote_all(void)
{
    return L->promote();
}

void
gc_freeze(void)
{
    L->freeze();
    G.gens[0].count = 0;
}

void
gc_unfreeze(void)
{
    L->unfreeze();
}

size_t
gc_get_freeze_count(void)
{
    return L->gen_size(GC_NGENS);
}

void
gc_set_callback(gc_callback_fn fn, void *arg)
{
    G.cb = fn;
    G.cb_arg = arg;
}

size_t
gc__collecting(void)
{
    return (size_t)G.collecting;
}

void
gc__foreach(void (*fn)(rt_obj_t *o, void *arg), void *arg)
{
    L->foreach(fn, arg);
}

void
gc__overhead(rt_overhead_t *out)
{
    size_t n = G.gc_alive;
    out->gc_objects = n;
    out->gc_inline_bytes = n * L->hdr;
    L->side_usage(&out->gc_side_bytes, &out->gc_side_pages);
}

int
gc_check_heap(char *msg, size_t msglen)
{
    return L->check(msg, msglen);
}
