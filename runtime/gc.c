/*
 * gc.c -- generational cycle collector for the runtime's container objects,
 * CPython 3.11's algorithm (Modules/gcmodule.c) on our gc_head_t.
 * Finds the containers that nothing outside their generation reaches,
 * clears them through their type's clear slot (which breaks the cycles),
 * and lets refcounting free them.  Survivors move to the next generation.
 *
 * Why this matters here: update_refs() writes the gc_head of every object
 * in the generations it collects, and the list splices write neighbours'
 * headers.  In a forked worker those writes copy the master's pages.  The
 * permanent generation (gc_freeze) is never visited, so it is not written.
 *
 * gc_refs values (gc_head_t.prev), see internal.h for the layout:
 * Between collections:
 *   prev is a plain pointer to the previous node of the generation list.
 * During collect() of generation N, for the objects of N only:
 *   prev = refs << GC_REFS_SHIFT | GC_COLLECTING
 *     update_refs()    refs = the object's refcount
 *     subtract_refs()  minus the references from other objects of N: after
 *                      it, refs > 0 means something outside N refers to it
 *     move_unreachable()  refs == 0 objects are parked on the unreachable
 *                      list (next | GC_NEXT_UNREACHABLE); an object a
 *                      reachable one refers to comes back with refs = 1.
 *                      Scanned reachable objects get their prev pointer
 *                      back and lose GC_COLLECTING.
 * Read collect() first.  API: gc.h.
 */
#include "gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GC_COLLECTING        ((uintptr_t)2)
#define GC_FLAG_MASK         ((uintptr_t)3)
#define GC_REFS_SHIFT        2
#define GC_NEXT_UNREACHABLE  ((uintptr_t)1)

typedef struct {
    gc_head_t head;
    long threshold;
    long count;
} gen_t;

static struct {
    gen_t gens[GC_NGENS];
    gen_t permanent;
    int enabled;
    int collecting;
    size_t long_lived_total;        /* survivors of the last full collection */
    size_t long_lived_pending;      /* promoted to gen 2 since then */
    gc_genstats_t stats[GC_NGENS];
    gc_callback_fn cb;
    void *cb_arg;
} G;

/* ---- list primitives (doubly linked, outside collections) ------------- */

#define NEXT(g)   ((gc_head_t *)((g)->next & ~GC_NEXT_UNREACHABLE))
#define PREV(g)   ((gc_head_t *)((g)->prev & ~GC_FLAG_MASK))

static void
list_init(gc_head_t *l)
{
    l->next = l->prev = (uintptr_t)l;
}

static int
list_empty(const gc_head_t *l)
{
    return l->next == (uintptr_t)l;
}

static void
list_append(gc_head_t *node, gc_head_t *list)
{
    gc_head_t *last = (gc_head_t *)list->prev;
    RT_WK_GCW(node);
    RT_WK_GCW(last);
    RT_WK_GCW(list);
    node->prev = (node->prev & GC_FLAG_MASK) | (uintptr_t)last;
    last->next = (uintptr_t)node;
    node->next = (uintptr_t)list;
    list->prev = (uintptr_t)node;
}

static void
list_unlink(gc_head_t *node)
{
    gc_head_t *prev = PREV(node), *next = NEXT(node);
    RT_WK_GCW(prev);
    RT_WK_GCW(next);
    prev->next = (uintptr_t)next;
    next->prev = (next->prev & GC_FLAG_MASK) | (uintptr_t)prev;
}

static void
list_move(gc_head_t *node, gc_head_t *list)
{
    list_unlink(node);
    list_append(node, list);
}

/* Append every node of from to to: writes four headers, not n. */
static void
list_merge(gc_head_t *from, gc_head_t *to)
{
    if (list_empty(from))
        return;
    gc_head_t *tail = (gc_head_t *)to->prev;
    gc_head_t *first = (gc_head_t *)from->next;
    gc_head_t *last = (gc_head_t *)from->prev;
    RT_WK_GCW(tail);
    RT_WK_GCW(first);
    RT_WK_GCW(last);
    RT_WK_GCW(to);
    tail->next = (uintptr_t)first;
    first->prev = (uintptr_t)tail;
    last->next = (uintptr_t)to;
    to->prev = (uintptr_t)last;
    list_init(from);
}

static size_t
list_size(const gc_head_t *l)
{
    size_t n = 0;
    for (gc_head_t *g = (gc_head_t *)l->next; g != l; g = NEXT(g))
        n++;
    return n;
}

/* ---- tracking --------------------------------------------------------- */

void
gc_track(rt_obj_t *o)
{
    gc_head_t *g = RT_AS_GC(o);
    RT_ASSERT(rt_is_gc(o));
    RT_ASSERT(g->next == 0);
    list_append(g, &G.gens[0].head);
}

void
gc_untrack(rt_obj_t *o)
{
    gc_head_t *g = RT_AS_GC(o);
    if (g->next == 0)
        return;
    list_unlink(g);
    RT_WK_GCW(g);
    g->next = 0;
    g->prev = 0;
}

int
gc_is_tracked(const rt_obj_t *o)
{
    return rt_is_gc(o) && RT_AS_GC(o)->next != 0;
}

/* ---- the collection's passes ------------------------------------------ */

static inline size_t
get_refs(const gc_head_t *g)
{
    return (size_t)(g->prev >> GC_REFS_SHIFT);
}

static inline void
set_refs(gc_head_t *g, size_t refs)
{
    RT_WK_GCW(g);
    g->prev = (g->prev & GC_FLAG_MASK) | ((uintptr_t)refs << GC_REFS_SHIFT);
}

static inline int
is_collecting(const gc_head_t *g)
{
    return (g->prev & GC_COLLECTING) != 0;
}

/* After this, every object of young has refs = its refcount and the
 * GC_COLLECTING flag: a write to every header of the generation.
 * 3.12: an immortal object's refcount says nothing about its references,
 * so it is moved to the permanent generation instead, the first time a
 * collection meets it (a write to its header and its neighbours', once);
 * no collection visits it again. */
static void
update_refs(gc_head_t *young)
{
    gc_head_t *g = NEXT(young);
    while (g != young) {
        gc_head_t *next = NEXT(g);
        rt_obj_t *o = RT_FROM_GC(g);
        RT_ASSERT(o->refcnt > 0);
        if (rt__mode.gc_immortal_to_permanent && rt_is_immortal(o)) {
            /* g's links are still plain: the ones before it carry refs
             * in prev now, but list_move writes only their next. */
            list_move(g, &G.permanent.head);
        } else {
            RT_WK_GCW(g);
            g->prev = ((uintptr_t)o->refcnt << GC_REFS_SHIFT)
                      | GC_COLLECTING;
        }
        g = next;
    }
}

static int
visit_decref(rt_obj_t *o, void *arg)
{
    (void)arg;
    if (rt_is_gc(o)) {
        gc_head_t *g = RT_AS_GC(o);
        if (is_collecting(g)) {
            RT_ASSERT(get_refs(g) > 0);
            RT_WK_GCW(g);
            g->prev -= (uintptr_t)1 << GC_REFS_SHIFT;
        }
    }
    return 0;
}

/* After this, refs counts only references from outside young. */
static void
subtract_refs(gc_head_t *young)
{
    for (gc_head_t *g = NEXT(young); g != young; g = NEXT(g)) {
        rt_obj_t *o = RT_FROM_GC(g);
        o->type->traverse(o, visit_decref, NULL);
    }
}

/* o is reachable from an object being scanned: make sure it is scanned. */
static int
visit_reachable(rt_obj_t *o, void *arg)
{
    gc_head_t *young = arg;
    if (!rt_is_gc(o))
        return 0;
    gc_head_t *g = RT_AS_GC(o);
    if (!is_collecting(g))
        return 0;                   /* another generation, or scanned */
    if (g->next & GC_NEXT_UNREACHABLE) {
        /* Parked earlier: unlink it from the unreachable list by hand (the
         * flag bits forbid the list helpers) and scan it after all. */
        gc_head_t *prev = PREV(g), *next = NEXT(g);
        RT_WK_GCW(prev);
        RT_WK_GCW(next);
        prev->next = g->next;
        next->prev = (next->prev & GC_FLAG_MASK) | (uintptr_t)prev;
        list_append(g, young);
        set_refs(g, 1);
    } else if (get_refs(g) == 0) {
        /* Not scanned yet: it will be, and must not be parked. */
        set_refs(g, 1);
    }
    /* else refs > 0: it will be scanned, or has been (flag cleared). */
    return 0;
}

/* Split young into reachable (stays in young) and unreachable.  After
 * this, young is a normal list again with no GC_COLLECTING flags, and
 * unreachable holds refs == 0 objects with GC_NEXT_UNREACHABLE set. */
static void
move_unreachable(gc_head_t *young, gc_head_t *unreachable)
{
    gc_head_t *prev = young;
    gc_head_t *g = NEXT(young);
    while (g != young) {
        if (get_refs(g)) {
            /* Reachable from outside, or from a reachable object: what
             * it refers to is reachable too.  young grows at its tail
             * while we walk it, so objects moved back get scanned. */
            rt_obj_t *o = RT_FROM_GC(g);
            o->type->traverse(o, visit_reachable, young);
            RT_WK_GCW(g);
            g->prev = (uintptr_t)prev;      /* relink, drop the flag */
            prev = g;
        } else {
            /* Tentatively unreachable: park it (a reachable object met
             * later may bring it back). */
            RT_WK_GCW(prev);
            prev->next = g->next;
            gc_head_t *last = (gc_head_t *)unreachable->prev;
            RT_WK_GCW(last);
            RT_WK_GCW(g);
            last->next = GC_NEXT_UNREACHABLE | (uintptr_t)g;
            g->prev = (g->prev & GC_FLAG_MASK) | (uintptr_t)last;
            g->next = GC_NEXT_UNREACHABLE | (uintptr_t)unreachable;
            unreachable->prev = (uintptr_t)g;
        }
        g = (gc_head_t *)prev->next;
    }
    RT_WK_GCW(young);
    young->prev = (uintptr_t)prev;
    unreachable->next &= ~GC_NEXT_UNREACHABLE;
}

/* Make the unreachable list a normal list: drop both flags. */
static void
clear_unreachable_flags(gc_head_t *unreachable)
{
    for (gc_head_t *g = NEXT(unreachable); g != unreachable; g = NEXT(g)) {
        RT_WK_GCW(g);
        g->next &= ~GC_NEXT_UNREACHABLE;
        g->prev &= ~GC_FLAG_MASK;
    }
}

/* Both passes return how many objects stay in young: CPython counts the
 * survivors in a pass of its own (gc_list_size); counting here saves one
 * walk of the whole generation and changes no write. */
static size_t
untrack_tuples(gc_head_t *young)
{
    size_t n = 0;
    gc_head_t *g = NEXT(young);
    while (g != young) {
        gc_head_t *next = NEXT(g);
        rt_obj_t *o = RT_FROM_GC(g);
        if (o->type == &rt_tuple_type)
            rt__tuple_maybe_untrack(o);
        n += g->next != 0;
        g = next;
    }
    return n;
}

/* Full collections only, to avoid quadratic dict build-up (bpo-14775). */
static size_t
untrack_dicts(gc_head_t *young)
{
    size_t n = 0;
    gc_head_t *g = NEXT(young);
    while (g != young) {
        gc_head_t *next = NEXT(g);
        rt_obj_t *o = RT_FROM_GC(g);
        if (o->type == &rt_dict_type)
            rt__dict_maybe_untrack(o);
        n += g->next != 0;
        g = next;
    }
    return n;
}

/* Break the garbage's references; objects still alive after their clear
 * (something outside kept them) move to old.
 * The reference taken around clear is dropped before asking whether o is
 * still alive, as CPython does: a dead object has left collectable by then
 * and never enters old.  (Asking first moved every dead object to old and
 * unlinked it again, writing old's tail header twice per object: in a
 * worker, a pre-fork page CPython's collection leaves shared.  Only the
 * pointer g is compared after the decref; o may be freed.) */
static void
delete_garbage(gc_head_t *collectable, gc_head_t *old)
{
    while (!list_empty(collectable)) {
        gc_head_t *g = NEXT(collectable);
        rt_obj_t *o = RT_FROM_GC(g);
        rt_incref(o);
        o->type->clear(o);
        rt_decref(o);
        if (NEXT(collectable) == g)
            list_move(g, old);      /* still alive; it may die later */
    }
}

static void clear_freelists(void);

/* Collect generation gen and the younger ones; returns objects found
 * unreachable. */
static long
collect(int gen)
{
    gc_head_t unreachable;
    uint64_t t0 = rt__now_ns();
    if (G.cb)
        G.cb(0, gen, 0, G.cb_arg);
    if (gen + 1 < GC_NGENS)
        G.gens[gen + 1].count++;
    for (int i = 0; i <= gen; i++)
        G.gens[i].count = 0;
    for (int i = 0; i < gen; i++)
        list_merge(&G.gens[i].head, &G.gens[gen].head);
    gc_head_t *young = &G.gens[gen].head;
    gc_head_t *old = gen < GC_GEN_OLDEST ? &G.gens[gen + 1].head : young;

    list_init(&unreachable);
    update_refs(young);
    subtract_refs(young);
    move_unreachable(young, &unreachable);
    clear_unreachable_flags(&unreachable);
    size_t survivors = untrack_tuples(young);
    if (young != old) {
        if (gen == GC_NGENS - 2)
            G.long_lived_pending += survivors;
        list_merge(young, old);
    } else {
        G.long_lived_pending = 0;
        G.long_lived_total = untrack_dicts(young);
    }
    long m = (long)list_size(&unreachable);
    delete_garbage(&unreachable, old);

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
    char *block = rt__obj_alloc(pre + sizeof(gc_head_t) + size);
    if (block == NULL)
        return NULL;
    if (pre)
        memset(block, 0, pre);
    gc_head_t *g = (gc_head_t *)(block + pre);
    g->next = g->prev = 0;
    rt_obj_t *o = RT_FROM_GC(g);
    rt__obj_init(o, type);
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
    RT_ASSERT(RT_AS_GC(o)->next == 0);
    rt__heap->nobjects--;
    rt__heap->ndeallocs++;
    unsigned cap, *fl = freelist_of(o->type, o->type == &rt_tuple_type
                                             ? rt_tuple_len(o) : 0, &cap);
    if (fl != NULL && *fl < cap)
        (*fl)++;                    /* onto a free list: not counted */
    else if (G.gens[0].count > 0)
        G.gens[0].count--;
    rt__obj_free(rt__obj_block(o));
}

/* ---- the gc module's API ---------------------------------------------- */

void
gc__init(void)
{
    memset(&G, 0, sizeof(G));
    memset(&FL, 0, sizeof(FL));
    for (int i = 0; i < GC_NGENS; i++)
        list_init(&G.gens[i].head);
    list_init(&G.permanent.head);
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
    return list_size(&G.gens[gen].head);
}

void
gc_freeze(void)
{
    for (int i = 0; i < GC_NGENS; i++)
        list_merge(&G.gens[i].head, &G.permanent.head);
    G.gens[0].count = 0;
}

void
gc_unfreeze(void)
{
    list_merge(&G.permanent.head, &G.gens[GC_GEN_OLDEST].head);
}

size_t
gc_get_freeze_count(void)
{
    return list_size(&G.permanent.head);
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

static gc_head_t *
list_of(int i)                      /* 0..2: generations, 3: permanent */
{
    return i < GC_NGENS ? &G.gens[i].head : &G.permanent.head;
}

void
gc__foreach(void (*fn)(rt_obj_t *o, void *arg), void *arg)
{
    for (int i = 0; i <= GC_NGENS; i++) {
        gc_head_t *l = list_of(i);
        for (gc_head_t *g = NEXT(l); g != l; g = NEXT(g))
            fn(RT_FROM_GC(g), arg);
    }
}

int
gc_check_heap(char *msg, size_t msglen)
{
    for (int i = 0; i <= GC_NGENS; i++) {
        gc_head_t *l = list_of(i);
        gc_head_t *prev = l;
        for (gc_head_t *g = (gc_head_t *)l->next; g != l;
             g = (gc_head_t *)g->next) {
            rt_obj_t *o = RT_FROM_GC(g);
            if (g->next & GC_NEXT_UNREACHABLE || g->prev & GC_FLAG_MASK) {
                snprintf(msg, msglen, "list %d: flags left on %p", i,
                         (void *)o);
                return -1;
            }
            if ((gc_head_t *)g->prev != prev) {
                snprintf(msg, msglen, "list %d: bad prev link at %p", i,
                         (void *)o);
                return -1;
            }
            if (!rt_is_gc(o) || o->refcnt <= 0) {
                snprintf(msg, msglen, "list %d: %s at %p: refcnt %ld", i,
                         o->type->name, (void *)o, (long)o->refcnt);
                return -1;
            }
            prev = g;
        }
        if ((gc_head_t *)l->prev != prev) {
            snprintf(msg, msglen, "list %d: bad tail", i);
            return -1;
        }
    }
    return 0;
}
