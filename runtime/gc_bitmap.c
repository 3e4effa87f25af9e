/*
 * gc_bitmap.c -- --gc-layout bitmap: no per-object links at all (after
 * Ruby 2.0's mark bitmaps and ART's side bitmaps).
 *
 * Permanent state, per MiB of address space that holds GC-able objects (a
 * region; heap arenas and large-block chunks are MiB-aligned, so a region
 * is one of them; under RT_MALLOC_BYPASS it is wherever malloc() put
 * them), in side memory (mem_side_map), 16-byte granules:
 *   tracked   1 bit per granule: the object starting there is tracked;
 *   gen       2 bits per granule (two bit planes): its generation, 0..2,
 *             or 3 for the permanent one (gc.freeze());
 *   count     tracked objects per generation in the region, so that a
 *             young collection scans only the regions holding young
 *             objects.
 * 3 bits per 16 bytes: 24 KiB per MiB region, with the header a 7-page
 * mapping.  Nothing is written to an object's page: tracking, untracking,
 * promotion and freezing write bits, and only when a generation changes
 * (a survivor of a full collection already in the oldest generation is
 * not written at all).
 *
 * A collection of generation N works on temporary tables (malloc()ed,
 * private to the process, freed at its end):
 *   - the set: every tracked object of generations <= N, gathered by
 *     scanning the regions' bits in address order, as an array of
 *     (object, gc_refs) entries;
 *   - per region involved, a membership bitmap and per-word prefix counts,
 *     so an object's entry is found from its address in O(1) (rank by
 *     popcount) when a traversal meets it;
 *   - a visited bit per entry and a stack for the reachability pass.
 * The passes compute what CPython's compute: gc_refs = refcount minus the
 * references from inside the set; the reachable objects are those with
 * gc_refs > 0 and everything they reach inside the set (a mark from them
 * with an explicit stack instead of CPython's list moves); the rest is
 * unreachable and is cleared, as delete_garbage does.  Survivors move to
 * generation N + 1, as with lists.
 *
 * What can legitimately differ from inline (tests/check_designs.c runs
 * random graphs through every layout and compares what each frees):
 *   - the order objects are visited (address order, not list order), so
 *     the order garbage is cleared in, and which of two nested tuples a
 *     collection untracks first: a tuple holding a tuple that is untracked
 *     later in the same pass stays tracked until the next collection under
 *     one layout and not the other.  The objects freed are the same; the
 *     counts of tracked objects per generation may differ by such tuples.
 *   - the collector's working memory: inline needs none, bitmap about 30
 *     bytes per object of the collected generations, for the length of
 *     the collection.  Should it be unavailable, the collection is given
 *     up before it frees or promotes anything (counted in B.abandoned) rather
 *     than failing an allocation that CPython's collector never makes; it
 *     is not fault-injected (mem_fail_after) for that reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_layout.h"

#define REGION_SHIFT    20
#define REGION_SIZE     ((uintptr_t)1 << REGION_SHIFT)
#define GRANULE_SHIFT   4
#define NGRANULES       (REGION_SIZE >> GRANULE_SHIFT)   /* 65,536 */
#define NWORDS          (NGRANULES / 64)                 /* 1,024 */
#define GEN_PERM        3

typedef struct region {
    uintptr_t base;
    size_t index;                   /* in B.regions */
    size_t count[4];                /* tracked objects per generation */
    uint64_t tracked[NWORDS];
    uint64_t genlo[NWORDS];
    uint64_t genhi[NWORDS];
} region_t;

/* A collection's view of one region. */
typedef struct tregion {
    uint64_t member[NWORDS];        /* in the set (cleared on untrack) */
    uint32_t prefix[NWORDS];        /* set members in the words before */
    size_t first;                   /* entry index of its first member */
} tregion_t;

typedef struct entry {
    rt_obj_t *o;
    intptr_t refs;                  /* gc_refs; < 0: visited (reachable) */
} entry_t;

#define RADIX_BITS  14              /* 48-bit addresses: 28 region bits */
#define RADIX_SIZE  ((size_t)1 << RADIX_BITS)

static struct {
    region_t **radix[RADIX_SIZE];   /* key >> 14 -> leaf of 2^14 regions */
    region_t **regions;             /* every region, by index */
    size_t nregions, cap;
    size_t gsize[4];                /* tracked objects per generation */
    /* During a collection: */
    tregion_t **treg;               /* by region index, NULL: not involved */
    size_t ntreg;                   /* regions when it started */
    entry_t *entries;
    size_t nentries;
    size_t abandoned;               /* collections given up (no memory) */
} B;

static region_t *
region_of(const void *p)
{
    uintptr_t key = (uintptr_t)p >> REGION_SHIFT;
    region_t **leaf = B.radix[(key >> RADIX_BITS) & (RADIX_SIZE - 1)];
    return leaf ? leaf[key & (RADIX_SIZE - 1)] : NULL;
}

static inline size_t
granule(const region_t *r, const void *p)
{
    return ((uintptr_t)p - r->base) >> GRANULE_SHIFT;
}

static inline int
bit_get(const uint64_t *w, size_t i)
{
    return (int)((w[i >> 6] >> (i & 63)) & 1);
}

static inline void
bit_put(uint64_t *w, size_t i, int on)
{
    uint64_t m = (uint64_t)1 << (i & 63);
    if (on)
        w[i >> 6] |= m;
    else
        w[i >> 6] &= ~m;
}

static inline int
gen_get(const region_t *r, size_t i)
{
    return bit_get(r->genlo, i) | bit_get(r->genhi, i) << 1;
}

/* Move the tracked object at granule i to generation g (writes only if
 * it changes). */
static void
gen_set(region_t *r, size_t i, int g)
{
    int old = gen_get(r, i);
    if (old == g)
        return;
    r->count[old]--;
    B.gsize[old]--;
    r->count[g]++;
    B.gsize[g]++;
    if ((old ^ g) & 1)
        bit_put(r->genlo, i, g & 1);
    if ((old ^ g) & 2)
        bit_put(r->genhi, i, (g >> 1) & 1);
}

static region_t *
region_new(uintptr_t base)
{
    uintptr_t key = base >> REGION_SHIFT;
    region_t ***slot = &B.radix[(key >> RADIX_BITS) & (RADIX_SIZE - 1)];
    if (*slot == NULL) {
        *slot = calloc(RADIX_SIZE, sizeof(region_t *));
        if (*slot == NULL)
            return NULL;
    }
    if (B.nregions == B.cap) {
        size_t cap = B.cap ? B.cap * 2 : 64;
        region_t **v = realloc(B.regions, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        B.regions = v;
        B.cap = cap;
    }
    region_t *r = mem_side_map(sizeof(region_t));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->index = B.nregions;
    B.regions[B.nregions++] = r;
    (*slot)[key & (RADIX_SIZE - 1)] = r;
    return r;
}

/* ---- the layout's hooks ----------------------------------------------- */

static void
bm_init(void)
{
    /* The previous heap's regions went with mem_fini(); its radix leaves
     * and tables are ours to free. */
    for (size_t i = 0; i < RADIX_SIZE; i++)
        free(B.radix[i]);
    free(B.regions);
    memset(&B, 0, sizeof B);
}

static int
bm_obj_new(rt_obj_t *o)
{
    RT_ASSERT(((uintptr_t)o & ((1u << GRANULE_SHIFT) - 1)) == 0);
    if (region_of(o) != NULL)
        return 0;
    return region_new((uintptr_t)o & ~(REGION_SIZE - 1)) ? 0 : -1;
}

static void
bm_obj_free(rt_obj_t *o)
{
    (void)o;
}

static void
bm_init_static(rt_obj_t *o)
{
    (void)o;                        /* no region: never tracked */
}

static void
bm_track(rt_obj_t *o)
{
    region_t *r = region_of(o);
    RT_ASSERT(rt_is_gc(o));
    RT_ASSERT(r != NULL);
    size_t i = granule(r, o);
    RT_ASSERT(!bit_get(r->tracked, i));
    bit_put(r->tracked, i, 1);
    if (r->genlo[i >> 6] & ((uint64_t)1 << (i & 63)))
        bit_put(r->genlo, i, 0);
    if (r->genhi[i >> 6] & ((uint64_t)1 << (i & 63)))
        bit_put(r->genhi, i, 0);
    r->count[0]++;
    B.gsize[0]++;
}

/* The collection's entry of o, or NULL if o is not in its set. */
static inline entry_t *
entry_of(const rt_obj_t *o)
{
    region_t *r = region_of(o);
    if (r == NULL || r->index >= B.ntreg || B.treg[r->index] == NULL)
        return NULL;
    tregion_t *t = B.treg[r->index];
    size_t i = granule(r, o), w = i >> 6;
    uint64_t bit = (uint64_t)1 << (i & 63);
    if (!(t->member[w] & bit))
        return NULL;
    return &B.entries[t->first + t->prefix[w]
                      + (size_t)__builtin_popcountll(t->member[w]
                                                     & (bit - 1))];
}

static void
bm_untrack(rt_obj_t *o)
{
    region_t *r = region_of(o);
    if (r == NULL)
        return;
    size_t i = granule(r, o);
    if (!bit_get(r->tracked, i))
        return;
    int g = gen_get(r, i);
    bit_put(r->tracked, i, 0);
    r->count[g]--;
    B.gsize[g]--;
    if (B.treg != NULL && r->index < B.ntreg && B.treg[r->index] != NULL)
        bit_put(B.treg[r->index]->member, i, 0);
}

static int
bm_is_tracked(const rt_obj_t *o)
{
    if (!rt_is_gc(o))
        return 0;
    region_t *r = region_of(o);
    return r != NULL && bit_get(r->tracked, granule(r, o));
}

/* Call fn on every tracked object of generation g (-1: any), in address
 * order within each region. */
static void
scan(int g, void (*fn)(region_t *r, size_t i, void *arg), void *arg)
{
    for (size_t k = 0; k < B.nregions; k++) {
        region_t *r = B.regions[k];
        if (g >= 0 && r->count[g] == 0)
            continue;
        for (size_t w = 0; w < NWORDS; w++) {
            uint64_t bits = r->tracked[w];
            while (bits) {
                size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (g < 0 || gen_get(r, i) == g)
                    fn(r, i, arg);
            }
        }
    }
}

static inline rt_obj_t *
obj_at(const region_t *r, size_t i)
{
    return (rt_obj_t *)(r->base + (i << GRANULE_SHIFT));
}

/* ---- a collection ----------------------------------------------------- */

static void
collection_free(void)
{
    for (size_t k = 0; k < B.ntreg; k++)
        free(B.treg[k]);
    free(B.treg);
    free(B.entries);
    B.treg = NULL;
    B.entries = NULL;
    B.ntreg = B.nentries = 0;
}

/* Gather the set: tracked objects of generations <= gen.  3.12: an
 * immortal one goes to the permanent generation instead.  -1 out of
 * memory (nothing changed but that move). */
static int
gather(int gen)
{
    size_t n = 0;
    for (int g = 0; g <= gen; g++)
        n += B.gsize[g];
    B.ntreg = B.nregions;
    B.treg = calloc(B.ntreg ? B.ntreg : 1, sizeof(*B.treg));
    B.entries = malloc((n ? n : 1) * sizeof(*B.entries));
    if (B.treg == NULL || B.entries == NULL)
        return -1;
    for (size_t k = 0; k < B.ntreg; k++) {
        region_t *r = B.regions[k];
        size_t in = 0;
        for (int g = 0; g <= gen; g++)
            in += r->count[g];
        if (in == 0)
            continue;
        tregion_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return -1;
        B.treg[k] = t;
        t->first = B.nentries;
        size_t before = 0;
        for (size_t w = 0; w < NWORDS; w++) {
            uint64_t bits = r->tracked[w], member = 0;
            t->prefix[w] = (uint32_t)before;
            while (bits) {
                unsigned b = (unsigned)__builtin_ctzll(bits);
                size_t i = w * 64 + b;
                bits &= bits - 1;
                if (gen_get(r, i) > gen)
                    continue;
                rt_obj_t *o = obj_at(r, i);
                if (GC_IMMORTAL_TO_PERMANENT(o)) {
                    gen_set(r, i, GEN_PERM);
                    continue;
                }
                member |= (uint64_t)1 << b;
                RT_ASSERT(rt_refcnt(o) > 0);
                B.entries[B.nentries].o = o;
                B.entries[B.nentries++].refs = rt_refcnt(o);
                before++;
            }
            t->member[w] = member;
        }
    }
    return 0;
}

static int
visit_decref(rt_obj_t *o, void *arg)
{
    (void)arg;
    if (rt_is_gc(o)) {
        entry_t *e = entry_of(o);
        if (e != NULL) {
            RT_ASSERT(e->refs > 0);
            e->refs--;
        }
    }
    return 0;
}

#define VISITED ((intptr_t)-1)

static int
visit_reach(rt_obj_t *o, void *arg)
{
    rt__ptrstack_t *stack = arg;
    if (!rt_is_gc(o))
        return 0;
    entry_t *e = entry_of(o);
    if (e != NULL && e->refs != VISITED) {
        e->refs = VISITED;
        rt__ptrstack_push(stack, e);
    }
    return 0;
}

/* Mark what the entries with gc_refs > 0 reach inside the set: refs
 * becomes VISITED for every reachable entry.  -1 out of memory. */
static int
mark_reachable(void)
{
    rt__ptrstack_t stack = RT_PTRSTACK_INIT;
    for (size_t k = 0; k < B.nentries && !stack.oom; k++) {
        entry_t *e = &B.entries[k];
        if (e->refs <= 0)
            continue;               /* VISITED, or no outside reference */
        e->refs = VISITED;
        rt__ptrstack_push(&stack, e);
        while (stack.n > 0 && !stack.oom) {
            entry_t *x = stack.v[--stack.n];
            x->o->type->traverse(x->o, visit_reach, &stack);
        }
    }
    int oom = stack.oom;
    rt__ptrstack_fini(&stack);
    return oom ? -1 : 0;
}

static int
in_set(const rt_obj_t *o)
{
    region_t *r = region_of(o);
    tregion_t *t = r->index < B.ntreg ? B.treg[r->index] : NULL;
    return t != NULL && bit_get(t->member, granule(r, o));
}

static long
bm_collect(int gen, size_t *survivors)
{
    int old = gen < GC_GEN_OLDEST ? gen + 1 : GC_GEN_OLDEST;
    *survivors = 0;
    if (gather(gen) < 0)
        goto abandon;
    for (size_t k = 0; k < B.nentries; k++) {       /* subtract_refs */
        rt_obj_t *o = B.entries[k].o;
        o->type->traverse(o, visit_decref, NULL);
    }
    if (mark_reachable() < 0) {
abandon:
        /* gc_refs live only in the entries: nothing else was changed. */
        collection_free();
        B.abandoned++;
        return 0;
    }
    for (size_t k = 0; k < B.nentries; k++)
        B.entries[k].refs = B.entries[k].refs == VISITED;
    /* The entries array is now 1 (reachable) or 0 (unreachable). */
    size_t n = 0;
    for (size_t k = 0; k < B.nentries; k++) {
        rt_obj_t *o = B.entries[k].o;
        if (!B.entries[k].refs)
            continue;
        if (o->type == &rt_tuple_type && bm_is_tracked(o))
            rt__tuple_maybe_untrack(o);
        n += bm_is_tracked(o);
    }
    if (gen == GC_GEN_OLDEST) {
        n = 0;
        for (size_t k = 0; k < B.nentries; k++) {
            rt_obj_t *o = B.entries[k].o;
            if (!B.entries[k].refs)
                continue;
            if (o->type == &rt_dict_type && bm_is_tracked(o))
                rt__dict_maybe_untrack(o);
            n += bm_is_tracked(o);
        }
    }
    *survivors = n;
    /* Survivors move to old; they leave the set (an untrack met later in
     * delete_garbage must not touch them). */
    long m = 0;
    for (size_t k = 0; k < B.nentries; k++) {
        rt_obj_t *o = B.entries[k].o;
        if (!B.entries[k].refs) {
            m++;
            continue;
        }
        region_t *r = region_of(o);
        size_t i = granule(r, o);
        if (bit_get(r->tracked, i))
            gen_set(r, i, old);
        bit_put(B.treg[r->index]->member, i, 0);
    }
    /* delete_garbage: an entry still in the set is alive and tracked. */
    for (size_t k = 0; k < B.nentries; k++) {
        rt_obj_t *o = B.entries[k].o;
        if (B.entries[k].refs || !in_set(o))
            continue;
        rt_incref(o);
        o->type->clear(o);
        rt_decref(o);
        if (in_set(o)) {            /* still alive: it may die later */
            region_t *r = region_of(o);
            size_t i = granule(r, o);
            gen_set(r, i, old);
            bit_put(B.treg[r->index]->member, i, 0);
        }
    }
    collection_free();
    return m;
}

/* ---- generations as a whole ------------------------------------------- */

static size_t
bm_gen_size(int i)
{
    return B.gsize[i];
}

static void
to_gen(region_t *r, size_t i, void *arg)
{
    gen_set(r, i, *(int *)arg);
}

static size_t
bm_promote(void)
{
    size_t n = B.gsize[0] + B.gsize[1];
    int g = GC_GEN_OLDEST;
    scan(0, to_gen, &g);
    scan(1, to_gen, &g);
    return n;
}

static void
bm_freeze(void)
{
    int g = GEN_PERM;
    for (int i = 0; i < GC_NGENS; i++)
        scan(i, to_gen, &g);
}

static void
bm_unfreeze(void)
{
    int g = GC_GEN_OLDEST;
    scan(GEN_PERM, to_gen, &g);
}

typedef struct {
    void (*fn)(rt_obj_t *o, void *arg);
    void *arg;
} each_t;

static void
each(region_t *r, size_t i, void *arg)
{
    each_t *e = arg;
    e->fn(obj_at(r, i), e->arg);
}

static void
bm_foreach(void (*fn)(rt_obj_t *o, void *arg), void *arg)
{
    each_t e = { fn, arg };
    for (int g = 0; g <= GEN_PERM; g++)
        scan(g, each, &e);
}

typedef struct {
    char *msg;
    size_t msglen;
    int bad;
    size_t count[4];
} check_t;

static void
check_one(region_t *r, size_t i, void *arg)
{
    check_t *c = arg;
    rt_obj_t *o = obj_at(r, i);
    c->count[gen_get(r, i)]++;
    if (!c->bad && (!rt_is_gc(o) || rt_refcnt(o) <= 0)) {
        snprintf(c->msg, c->msglen, "tracked %s at %p: refcnt %ld",
                 o->type->name, (void *)o, (long)rt_refcnt(o));
        c->bad = 1;
    }
}

static int
bm_check(char *msg, size_t msglen)
{
    check_t c = { msg, msglen, 0, { 0 } };
    scan(-1, check_one, &c);
    if (c.bad)
        return -1;
    for (int g = 0; g <= GEN_PERM; g++) {
        size_t in_regions = 0;
        for (size_t k = 0; k < B.nregions; k++)
            in_regions += B.regions[k]->count[g];
        if (c.count[g] != B.gsize[g] || in_regions != B.gsize[g]) {
            snprintf(msg, msglen, "generation %d: %zu objects in the bits, "
                     "%zu counted by regions, %zu in all", g, c.count[g],
                     in_regions, B.gsize[g]);
            return -1;
        }
    }
    return 0;
}

static void
bm_side_usage(size_t *bytes, size_t *pages)
{
    size_t pg = rt__page_size();
    *bytes = B.nregions * ((sizeof(region_t) + pg - 1) / pg * pg);
    *pages = mem_side_resident();
}

const gc_layout_ops_t gc__bitmap_ops = {
    0, bm_init, bm_obj_new, bm_obj_free, bm_init_static, bm_track,
    bm_untrack, bm_is_tracked, bm_collect, bm_gen_size, bm_promote,
    bm_freeze, bm_unfreeze, bm_foreach, bm_check, bm_side_usage,
};
