/*
 * rc.c -- split refcounts (--refcount split), after PEP 703's biased
 * reference counting: objects that existed at fork keep their count in
 * the object, where the parent left it, and a worker's increments and
 * decrements of them go to a table of the worker's own, so reading a
 * shared object writes none of the pages the master built.
 *
 * The shared mark (object.h, "refcnt values"):
 *   rt_before_fork() sets RT_SHARED_BIT in the refcnt of every object the
 *   heap walk reaches (everything reachable from the roots or tracked by
 *   the collector), immortal ones excepted, in the parent, before any
 *   child exists: those writes copy nothing.  From then on the refcnt of
 *   a shared object is only read, until it is freed.
 *
 * The table: object address -> delta (intptr_t), open addressing with
 * linear probing in malloc()ed memory, never in the heap's arenas, so it
 * is neither heap memory nor shared: each process writes its own copy
 * (a child starts from its parent's, whose deltas stay valid, since they
 * are the parent's references the child inherited).
 *   true count = (refcnt - RT_SHARED_BIT) + delta
 * An entry stays when its delta returns to 0 (a read is incref + decref:
 * the entry would be made again at the next read); it goes when the
 * object is freed.  The decrement that brings the true count to 0 removes
 * the entry, sets refcnt to 0 (the block is about to be freed: that page
 * is written anyway) and deallocates.
 *
 * Out of memory (the table cannot grow): the increment or decrement is
 * written in the object's own count instead, keeping the bit.  The sum
 * stays right, the page is copied, and the fallback is counted.
 *
 * Objects not reached by the walk (held only from C, outside the roots)
 * and the static singletons (not heap memory) are not marked: they keep
 * the inline count.
 */
#include "object.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    uintptr_t key;                  /* object address; 0: empty */
    intptr_t delta;
} rc_slot_t;

static struct {
    rc_slot_t *slots;
    size_t cap;                     /* 0, or a power of two */
    unsigned shift;                 /* 64 - log2(cap) */
    size_t n;                       /* entries */
    size_t shared;                  /* marked objects still alive */
    size_t fallbacks;
} R;

#define RC_MIN_CAP   ((size_t)1 << 10)

/* Fibonacci hashing: the high bits of the product, so that addresses 16
 * bytes apart spread over the whole table. */
static inline size_t
home_of(uintptr_t key, unsigned shift)
{
    return (size_t)(((uint64_t)(key >> 4) * 0x9e3779b97f4a7c15ULL) >> shift);
}

static rc_slot_t *
find(uintptr_t key)
{
    if (R.cap == 0)
        return NULL;
    size_t mask = R.cap - 1;
    for (size_t i = home_of(key, R.shift);; i = (i + 1) & mask) {
        if (R.slots[i].key == key)
            return &R.slots[i];
        if (R.slots[i].key == 0)
            return NULL;
    }
}

/* Double the table (or make the first); 0 or -1 (the old one is kept). */
static int
grow(void)
{
    size_t cap = R.cap ? R.cap * 2 : RC_MIN_CAP;
    rc_slot_t *t = rt__fail_now() ? NULL : calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    unsigned shift = 64 - (unsigned)__builtin_ctzll((unsigned long long)cap);
    for (size_t i = 0; i < R.cap; i++) {
        if (R.slots[i].key == 0)
            continue;
        size_t j = home_of(R.slots[i].key, shift);
        while (t[j].key)
            j = (j + 1) & (cap - 1);
        t[j] = R.slots[i];
    }
    free(R.slots);
    R.slots = t;
    R.cap = cap;
    R.shift = shift;
    return 0;
}

/* o's slot, made with delta 0 if it has none; NULL out of memory.  The
 * pointer holds until the next change to the table. */
static rc_slot_t *
find_or_add(uintptr_t key)
{
    rc_slot_t *s = find(key);
    if (s != NULL)
        return s;
    /* At most 3/4 full: short probe sequences for linear probing. */
    if (4 * (R.n + 1) > 3 * R.cap && grow() < 0)
        return NULL;
    size_t mask = R.cap - 1, i = home_of(key, R.shift);
    while (R.slots[i].key)
        i = (i + 1) & mask;
    R.slots[i].key = key;
    R.slots[i].delta = 0;
    R.n++;
    return &R.slots[i];
}

/* Remove slot s, shifting back the entries after it that probed past it
 * (no tombstones: the probe invariant "no empty slot between an entry's
 * home and the entry" holds again after each move). */
static void
remove_slot(rc_slot_t *s)
{
    size_t mask = R.cap - 1, i = (size_t)(s - R.slots), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (R.slots[j].key == 0)
            break;
        size_t k = home_of(R.slots[j].key, R.shift);
        /* The entry at j may move to i unless its home lies cyclically
         * in (i, j]. */
        int home_between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!home_between) {
            R.slots[i] = R.slots[j];
            i = j;
        }
    }
    R.slots[i].key = 0;
    R.slots[i].delta = 0;
    R.n--;
}

/* The true count reached zero: o stops being shared and is freed. */
static void
free_shared(rt_obj_t *o)
{
    R.shared--;
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    o->refcnt = 0;
    rt_dealloc(o);
}

void
rt__rc_incref_shared(rt_obj_t *o)
{
    rc_slot_t *s = find_or_add((uintptr_t)o);
    if (s == NULL) {                /* no table memory: write inline */
        R.fallbacks++;
        RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
        o->refcnt++;
        return;
    }
    s->delta++;
}

void
rt__rc_decref_shared(rt_obj_t *o)
{
    intptr_t inl = o->refcnt - RT_SHARED_BIT;
    rc_slot_t *s = find_or_add((uintptr_t)o);
    if (s == NULL) {                /* no table memory (so no entry) */
        R.fallbacks++;
        RT_ASSERT(inl > 0);
        if (inl == 1) {
            free_shared(o);
            return;
        }
        RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
        o->refcnt--;
        return;
    }
    s->delta--;
    RT_ASSERT(inl + s->delta >= 0);
    if (inl + s->delta == 0) {
        remove_slot(s);             /* before dealloc: it decrefs */
        free_shared(o);
    }
}

intptr_t
rt__rc_delta(const rt_obj_t *o)
{
    rc_slot_t *s = find((uintptr_t)o);
    return s ? s->delta : 0;
}

void
rt__rc_unshare(rt_obj_t *o)
{
    if (!rt_is_shared(o))
        return;
    rc_slot_t *s = find((uintptr_t)o);
    if (s != NULL)
        remove_slot(s);
    R.shared--;
}

void
rt__rc_fini(void)
{
    free(R.slots);
    memset(&R, 0, sizeof R);
}

/* ---- marking before fork ---------------------------------------------- */

static void
mark_shared(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    long *marked = arg;
    (void)block;
    (void)len;
    /* Called once per block of o: the first call marks it, the others
     * (its item array, its key table) find it marked and only read. */
    if (o->refcnt >= RT_IMMORTAL_REFCNT)
        return;                     /* immortal, or already shared */
    RT_ASSERT(o->refcnt > 0);
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    o->refcnt |= RT_SHARED_BIT;
    R.shared++;
    (*marked)++;
}

long
rt_before_fork(rt_heap_t *h)
{
    long marked = 0;
    if (rt__mode.refcount != RT_RC_SPLIT)
        return 0;
    if (rt_heap_walk(h, mark_shared, &marked) < 0)
        return -1;                  /* those marked so far stay marked */
    return marked;
}

/* ---- what it costs ---------------------------------------------------- */

void
rt_get_overhead(rt_heap_t *h, rt_overhead_t *out)
{
    (void)h;
    memset(out, 0, sizeof *out);
    gc__overhead(out);
    out->rc_shared = R.shared;
    out->rc_table_entries = R.n;
    out->rc_table_bytes = R.cap * sizeof(rc_slot_t);
    out->rc_fallbacks = R.fallbacks;
}
