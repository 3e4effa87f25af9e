/*
 * mem.c -- arenas, pools and blocks: the runtime's pymalloc.
 *
 * Memory comes from the kernel in arenas of MEM_ARENA_SIZE bytes, mapped
 * at an address aligned to their size and marked MADV_NOHUGEPAGE so that a
 * copy-on-write fault after fork() copies 4 KiB, not 2 MiB.  An arena is cut
 * into MEM_POOLS_PER_ARENA pools; a pool serves blocks of one size class.
 * Blocks are carved from a pool lazily (nextoffset), as obmalloc does, so a
 * fresh pool touches only the pages it hands out.
 *
 * Pool states (as obmalloc names them):
 *   used    some blocks allocated, some free: on usedpools[class], a ring.
 *   full    every block allocated: on no list.
 *   empty   no block allocated: on its arena's freepools list; it may be
 *           reused for any size class.
 * Arena states:
 *   usable  has empty or never-carved pools: on the usable list, sorted by
 *           nfreepools ascending, so allocation fills the fullest arena
 *           first and nearly empty arenas get the chance to drain.
 *   full    no free pool: on no list.
 *   unused  its slot in the arenas[] table has no mapping.
 * An arena whose pools are all empty is unmapped, except that one such
 * arena is kept for immediate reuse (CPython 3.9+, bpo-37257).
 *
 * mem_in_arena() must answer for any pointer, including malloc()ed ones,
 * without reading memory it does not own, so arenas are found through a
 * two-level radix map of their base addresses (CPython 3.10 does the same).
 * Read mem_alloc() and mem_free() first.
 */
#include "mem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "wkinds.h"

/* --write-kinds: the allocator's own metadata (pool headers, free-list
 * links, large-block headers) is written at the places marked ALLOC. */
#define ALLOC(p)    RT_WK_NOTE((p), RT_WK_ALLOC)

/* ---- pools ------------------------------------------------------------ */

typedef struct arena arena_t;

typedef struct pool {
    unsigned count;                 /* blocks in use */
    unsigned szidx;                 /* size class */
    uint8_t *freeblock;             /* head of the freed-block list */
    struct pool *nextpool;          /* usedpools ring or freepools list */
    struct pool *prevpool;          /* usedpools ring only */
    unsigned arenaindex;            /* slot in the arenas[] table */
    unsigned nextoffset;            /* next never-used block */
    unsigned maxnextoffset;         /* last offset a block may start at */
} pool_t;

#define POOL_OVERHEAD  ((sizeof(pool_t) + MEM_ALIGNMENT - 1) \
                        & ~(size_t)(MEM_ALIGNMENT - 1))
#define POOL_ADDR(p)   ((pool_t *)((uintptr_t)(p) & ~(MEM_POOL_SIZE - 1)))

/* ---- arenas ----------------------------------------------------------- */

struct arena {
    uintptr_t address;              /* 0: slot unused */
    unsigned nfreepools;            /* empty + never-carved pools */
    pool_t *freepools;              /* empty pools */
    uintptr_t pool_address;         /* next never-carved pool */
    arena_t *nextarena, *prevarena; /* usable list, or the unused list */
};

/* Radix map of live arenas: key = address >> ARENA_SHIFT. */
#define ADDR_BITS      48
#define ARENA_SHIFT    (__builtin_ctzl(MEM_ARENA_SIZE))
#define KEY_BITS       (ADDR_BITS - ARENA_SHIFT)
#define L1_BITS        (KEY_BITS / 2)
#define L2_BITS        (KEY_BITS - L1_BITS)

typedef struct large {
    struct large *next, *prev;
    size_t size;
    size_t magic;
} large_t;
#define LARGE_MAGIC    ((size_t)0xC0F1A2E5B10C0000ULL)

static struct {
    int initialized;
    arena_t *arenas;                /* table of arena slots */
    size_t narenas;                 /* slots in the table */
    arena_t *unused_arenas;         /* free slots, via nextarena */
    arena_t *usable_arenas;         /* sorted by nfreepools ascending */
    arena_t *last_with[MEM_POOLS_PER_ARENA + 1]; /* last usable arena
                                    with that many free pools, or NULL */
    size_t arenas_allocated, arenas_released, arenas_live;
    pool_t usedpools[MEM_NCLASSES]; /* ring heads (sentinels) */
    uint64_t *radix[(size_t)1 << 16];  /* L1 -> bitmap of 2^L2 arenas */
    large_t large;                  /* ring head of large blocks */
    size_t large_in_use, large_bytes;
    size_t allocs, frees;
    long fail_countdown;
    void (*release_hook)(void *arg, uintptr_t start, uintptr_t end);
    void *release_arg;
} M;

void
mem_set_release_hook(void (*fn)(void *arg, uintptr_t start, uintptr_t end),
                     void *arg)
{
    M.release_hook = fn;
    M.release_arg = arg;
}

static void
about_to_release(uintptr_t start, uintptr_t end)
{
    if (M.release_hook && start < end)
        M.release_hook(M.release_arg, start, end);
}

static int
radix_get(uintptr_t addr)
{
    uintptr_t key = addr >> ARENA_SHIFT;
    if (key >> KEY_BITS)
        return 0;
    uint64_t *leaf = M.radix[key >> L2_BITS];
    if (leaf == NULL)
        return 0;
    uintptr_t bit = key & (((uintptr_t)1 << L2_BITS) - 1);
    return (int)((leaf[bit >> 6] >> (bit & 63)) & 1);
}

static int
radix_set(uintptr_t addr, int on)
{
    uintptr_t key = addr >> ARENA_SHIFT;
    if (key >> KEY_BITS)
        return -1;
    uint64_t **leafp = &M.radix[key >> L2_BITS];
    if (*leafp == NULL) {
        if (!on)
            return 0;
        *leafp = calloc(((size_t)1 << L2_BITS) / 64, sizeof(uint64_t));
        if (*leafp == NULL)
            return -1;
    }
    uintptr_t bit = key & (((uintptr_t)1 << L2_BITS) - 1);
    if (on)
        (*leafp)[bit >> 6] |= (uint64_t)1 << (bit & 63);
    else
        (*leafp)[bit >> 6] &= ~((uint64_t)1 << (bit & 63));
    return 0;
}

int
mem_in_arena(const void *p)
{
    return radix_get((uintptr_t)p);
}

/* Map an arena-sized region aligned to its size. */
static void *
map_aligned(void)
{
    size_t len = MEM_ARENA_SIZE * 2;
    uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + MEM_ARENA_SIZE - 1)
                      & ~(uintptr_t)(MEM_ARENA_SIZE - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = len - head - MEM_ARENA_SIZE;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((uint8_t *)start + MEM_ARENA_SIZE, tail);
    /* Keep copy-on-write 4 KiB-granular whatever the THP mode. */
    (void)madvise((void *)start, MEM_ARENA_SIZE, MADV_NOHUGEPAGE);
    return (void *)start;
}

/* Take an unused slot, map its arena, put it on the usable list.
 * Only called when the usable list is empty. */
static arena_t *
new_arena(void)
{
    if (M.unused_arenas == NULL) {
        size_t n = M.narenas ? M.narenas * 2 : 16;
        arena_t *t = realloc(M.arenas, n * sizeof(arena_t));
        if (t == NULL)
            return NULL;
        /* Growing happens only when no arena is usable and no slot is
         * unused, so no list points into the old table; pools name their
         * arena by index, not by pointer, so nothing else moves. */
        assert(M.usable_arenas == NULL);
        memset(&t[M.narenas], 0, (n - M.narenas) * sizeof(arena_t));
        for (size_t i = n; i-- > M.narenas;) {
            t[i].nextarena = M.unused_arenas;
            M.unused_arenas = &t[i];
        }
        M.arenas = t;
        M.narenas = n;
    }
    arena_t *a = M.unused_arenas;
    void *base = map_aligned();
    if (base == NULL)
        return NULL;
    if (radix_set((uintptr_t)base, 1) < 0) {
        munmap(base, MEM_ARENA_SIZE);
        return NULL;
    }
    M.unused_arenas = a->nextarena;
    a->address = (uintptr_t)base;
    a->nfreepools = MEM_POOLS_PER_ARENA;
    a->freepools = NULL;
    a->pool_address = a->address;
    a->nextarena = a->prevarena = NULL;
    M.arenas_allocated++;
    M.arenas_live++;
    return a;
}

/* ---- the usable-arena list ---------------------------------------------
 * Sorted by nfreepools ascending; last_with[n] is the last arena on it with
 * exactly n free pools, so an arena whose count changed is re-inserted in
 * O(MEM_POOLS_PER_ARENA) steps at worst, never O(arenas). */

static void
usable_unlink(arena_t *a)
{
    unsigned nf = a->nfreepools;
    if (M.last_with[nf] == a)
        M.last_with[nf] = (a->prevarena && a->prevarena->nfreepools == nf)
                          ? a->prevarena : NULL;
    if (a->prevarena)
        a->prevarena->nextarena = a->nextarena;
    else
        M.usable_arenas = a->nextarena;
    if (a->nextarena)
        a->nextarena->prevarena = a->prevarena;
    a->nextarena = a->prevarena = NULL;
}

static void
usable_insert(arena_t *a)
{
    unsigned nf = a->nfreepools;
    arena_t *after = NULL;
    for (unsigned n = nf + 1; n-- > 0;) {
        if (M.last_with[n]) {
            after = M.last_with[n];
            break;
        }
    }
    if (after == NULL) {
        a->prevarena = NULL;
        a->nextarena = M.usable_arenas;
        if (M.usable_arenas)
            M.usable_arenas->prevarena = a;
        M.usable_arenas = a;
    } else {
        a->prevarena = after;
        a->nextarena = after->nextarena;
        if (after->nextarena)
            after->nextarena->prevarena = a;
        after->nextarena = a;
    }
    M.last_with[nf] = a;
}

/* Unmap an arena that is on no list. */
static void
release_arena(arena_t *a)
{
    about_to_release(a->address, a->address + MEM_ARENA_SIZE);
    radix_set(a->address, 0);
    munmap((void *)a->address, MEM_ARENA_SIZE);
    a->address = 0;
    a->freepools = NULL;
    a->nextarena = M.unused_arenas;
    M.unused_arenas = a;
    M.arenas_released++;
    M.arenas_live--;
}

/* ---- small blocks ----------------------------------------------------- */

static void
usedpool_link(pool_t *p)            /* at the front of its class's ring */
{
    pool_t *head = &M.usedpools[p->szidx];
    ALLOC(p);
    ALLOC(head->nextpool);
    p->nextpool = head->nextpool;
    p->prevpool = head;
    head->nextpool->prevpool = p;
    head->nextpool = p;
}

static void
usedpool_unlink(pool_t *p)
{
    ALLOC(p->prevpool);
    ALLOC(p->nextpool);
    p->prevpool->nextpool = p->nextpool;
    p->nextpool->prevpool = p->prevpool;
}

/* Take an empty or never-carved pool from the fullest usable arena and
 * hand out its first block. */
static void *
alloc_from_new_pool(unsigned szidx)
{
    if (M.usable_arenas == NULL) {
        arena_t *fresh = new_arena();
        if (fresh == NULL)
            return NULL;
        usable_insert(fresh);
    }
    arena_t *a = M.usable_arenas;
    pool_t *p;
    usable_unlink(a);
    if (a->freepools) {
        p = a->freepools;
        a->freepools = p->nextpool;
    } else {
        assert(a->pool_address < a->address + MEM_ARENA_SIZE);
        p = (pool_t *)a->pool_address;
        a->pool_address += MEM_POOL_SIZE;
    }
    a->nfreepools--;
    if (a->nfreepools > 0)
        usable_insert(a);           /* still the fewest free: the head */
    ALLOC(p);
    p->arenaindex = (unsigned)(a - M.arenas);
    p->szidx = szidx;
    p->count = 1;
    size_t size = MEM_CLASS2SIZE(szidx);
    uint8_t *block = (uint8_t *)p + POOL_OVERHEAD;
    p->nextoffset = (unsigned)(POOL_OVERHEAD + 2 * size);
    p->maxnextoffset = (unsigned)(MEM_POOL_SIZE - size);
    p->freeblock = block + size;
    ALLOC(p->freeblock);
    *(uint8_t **)p->freeblock = NULL;
    usedpool_link(p);
    return block;
}

static void *
small_alloc(size_t n)
{
    unsigned szidx = (unsigned)MEM_SIZE2CLASS(n);
    pool_t *p = M.usedpools[szidx].nextpool;
    uint8_t *block;
    if (p == &M.usedpools[szidx])
        return alloc_from_new_pool(szidx);
    /* A used pool: pop its free list, or carve the next block. */
    block = p->freeblock;
    ALLOC(p);
    p->count++;
    p->freeblock = *(uint8_t **)block;
    if (p->freeblock == NULL) {
        if (p->nextoffset <= p->maxnextoffset) {
            p->freeblock = (uint8_t *)p + p->nextoffset;
            p->nextoffset += (unsigned)MEM_CLASS2SIZE(szidx);
            ALLOC(p->freeblock);
            *(uint8_t **)p->freeblock = NULL;
        } else {
            usedpool_unlink(p);     /* used -> full */
        }
    }
    return block;
}

static void
small_free(void *ptr)
{
    pool_t *p = POOL_ADDR(ptr);
    uint8_t *lastfree = p->freeblock;
    ALLOC(ptr);
    ALLOC(p);
    *(uint8_t **)ptr = lastfree;
    p->freeblock = ptr;
    p->count--;
    if (lastfree == NULL) {         /* full -> used (pools hold >= 2 blocks) */
        assert(p->count > 0);
        usedpool_link(p);
        return;
    }
    if (p->count != 0)
        return;
    /* used -> empty: the pool goes back to its arena. */
    usedpool_unlink(p);
    arena_t *a = &M.arenas[p->arenaindex];
    p->nextpool = a->freepools;
    a->freepools = p;
    if (a->nfreepools == 0) {       /* the arena was full: usable again */
        a->nfreepools = 1;
        usable_insert(a);
        return;
    }
    usable_unlink(a);
    a->nfreepools++;
    if (a->nfreepools == MEM_POOLS_PER_ARENA
        && M.last_with[MEM_POOLS_PER_ARENA] != NULL) {
        /* Wholly empty, and another empty arena is already kept. */
        release_arena(a);
        return;
    }
    usable_insert(a);
}

/* ---- large blocks ----------------------------------------------------- */

static void *
large_alloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(large_t))
        return NULL;
    large_t *b = malloc(sizeof(large_t) + n);
    if (b == NULL)
        return NULL;
    ALLOC(b);
    ALLOC(M.large.next);
    b->size = n;
    b->magic = LARGE_MAGIC;
    b->next = M.large.next;
    b->prev = &M.large;
    M.large.next->prev = b;
    M.large.next = b;
    M.large_in_use++;
    M.large_bytes += n;
    return b + 1;
}

static void
large_free(void *ptr)
{
    large_t *b = (large_t *)ptr - 1;
    RT_ASSERT(b->magic == LARGE_MAGIC);
    if (M.release_hook) {
        uintptr_t pg = (uintptr_t)rt__page_size();
        about_to_release(((uintptr_t)b + pg - 1) & ~(pg - 1),
                         ((uintptr_t)(b + 1) + b->size) & ~(pg - 1));
    }
    ALLOC(b->prev);
    ALLOC(b->next);
    ALLOC(b);
    b->prev->next = b->next;
    b->next->prev = b->prev;
    M.large_in_use--;
    M.large_bytes -= b->size;
    b->magic = 0;
    free(b);
}

/* ---- public entry points ---------------------------------------------- */

int
mem_init(void)
{
    if (M.initialized)
        return -1;
    for (unsigned i = 0; i < MEM_NCLASSES; i++) {
        M.usedpools[i].nextpool = M.usedpools[i].prevpool = &M.usedpools[i];
        M.usedpools[i].szidx = i;
    }
    M.large.next = M.large.prev = &M.large;
    M.initialized = 1;
    return 0;
}

void
mem_fini(void)
{
    if (!M.initialized)
        return;
    for (size_t i = 0; i < M.narenas; i++) {
        if (M.arenas[i].address) {
            about_to_release(M.arenas[i].address,
                             M.arenas[i].address + MEM_ARENA_SIZE);
            radix_set(M.arenas[i].address, 0);
            munmap((void *)M.arenas[i].address, MEM_ARENA_SIZE);
        }
    }
    while (M.large.next != &M.large)
        large_free(M.large.next + 1);
    for (size_t i = 0; i < sizeof(M.radix) / sizeof(M.radix[0]); i++)
        free(M.radix[i]);
    free(M.arenas);
    memset(&M, 0, sizeof(M));
}

void
mem_fail_after(long n)
{
    rt__fail_after(n);
}

void *
mem_alloc(size_t n)
{
    void *p;
    RT_ASSERT(M.initialized);
    if (rt__fail_now())
        return NULL;
    if (n == 0)
        n = 1;
    p = n <= MEM_SMALL_MAX ? small_alloc(n) : large_alloc(n);
    if (p == NULL)
        return NULL;
    M.allocs++;
    /* Whatever is made here (an object, an item array, a key table)
     * writes the block first: a new object in a block it inherited. */
    RT_WK_SPAN(p, n, RT_WK_NEW);
#ifdef RT_DEBUG
    memset(p, 0xAA, n);
#endif
    return p;
}

void
mem_free(void *p)
{
    if (p == NULL)
        return;
    M.frees++;
    if (mem_in_arena(p)) {
#ifdef RT_DEBUG
        memset(p, 0x55, MEM_CLASS2SIZE(POOL_ADDR(p)->szidx));
#endif
        small_free(p);
    } else {
        large_free(p);
    }
}

void *
mem_realloc(void *p, size_t n)
{
    size_t old;
    if (p == NULL)
        return mem_alloc(n);
    if (n == 0)
        n = 1;
    if (mem_in_arena(p)) {
        unsigned szidx = POOL_ADDR(p)->szidx;
        old = MEM_CLASS2SIZE(szidx);
        if (n <= MEM_SMALL_MAX && MEM_SIZE2CLASS(n) == szidx)
            return p;
    } else {
        large_t *b = (large_t *)p - 1;
        old = b->size;
        if (n > MEM_SMALL_MAX) {
            if (rt__fail_now())
                return NULL;
            /* Unlink, realloc, relink: neighbours point at the header. */
            large_t *prev = b->prev, *next = b->next;
            large_t *nb = realloc(b, sizeof(large_t) + n);
            if (nb == NULL)
                return NULL;
            if (nb != b)
                RT_WK_SPAN(nb, sizeof(large_t) + n, RT_WK_NEW);
            ALLOC(prev);
            ALLOC(next);
            ALLOC(nb);
            prev->next = nb;
            next->prev = nb;
            M.large_bytes += n - nb->size;
            nb->size = n;
            return nb + 1;
        }
    }
    void *q = mem_alloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    mem_free(p);
    return q;
}

size_t
mem_block_size(const void *p)
{
    if (p == NULL || !M.initialized)
        return 0;
    if (mem_in_arena(p))
        return MEM_CLASS2SIZE(POOL_ADDR(p)->szidx);
    const large_t *b = (const large_t *)p - 1;
    for (large_t *x = M.large.next; x != &M.large; x = x->next)
        if (x == b)
            return sizeof(large_t) + b->size;
    return 0;
}

void
mem_get_stats(mem_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->arenas_allocated = M.arenas_allocated;
    st->arenas_released = M.arenas_released;
    st->arenas_live = M.arenas_live;
    for (size_t i = 0; i < M.narenas; i++) {
        arena_t *a = &M.arenas[i];
        if (!a->address)
            continue;
        st->pools_unused += (a->address + MEM_ARENA_SIZE - a->pool_address)
                            / MEM_POOL_SIZE;
        for (uintptr_t pa = a->address; pa < a->pool_address;
             pa += MEM_POOL_SIZE) {
            pool_t *p = (pool_t *)pa;
            if (p->count == 0) {
                st->pools_empty++;
                continue;
            }
            if (p->freeblock == NULL)
                st->pools_full++;
            else
                st->pools_used++;
            st->class_pools[p->szidx]++;
            st->class_blocks[p->szidx] += p->count;
            st->blocks_in_use += p->count;
            st->bytes_in_use += p->count * MEM_CLASS2SIZE(p->szidx);
        }
    }
    st->large_in_use = M.large_in_use;
    st->large_bytes = M.large_bytes;
    st->allocs = M.allocs;
    st->frees = M.frees;
}

static int
range_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const mem_range_t *)a)->start;
    uintptr_t y = ((const mem_range_t *)b)->start;
    return x < y ? -1 : x > y;
}

long
mem_ranges(mem_range_t *out, size_t max)
{
    size_t n = M.arenas_live + M.large_in_use, k = 0;
    mem_range_t *all = rt__scratch_realloc(NULL, (n ? n : 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    uintptr_t pg = (uintptr_t)rt__page_size();
    for (size_t i = 0; i < M.narenas; i++)
        if (M.arenas[i].address) {
            all[k].start = M.arenas[i].address;
            all[k++].end = M.arenas[i].address + MEM_ARENA_SIZE;
        }
    for (large_t *b = M.large.next; b != &M.large; b = b->next) {
        all[k].start = (uintptr_t)b & ~(pg - 1);
        all[k++].end = ((uintptr_t)(b + 1) + b->size + pg - 1) & ~(pg - 1);
    }
    qsort(all, k, sizeof(*all), range_cmp);
    size_t m = 0;                   /* merge into all[0..m) */
    for (size_t i = 0; i < k; i++) {
        if (m > 0 && all[i].start <= all[m - 1].end) {
            if (all[i].end > all[m - 1].end)
                all[m - 1].end = all[i].end;
        } else {
            all[m++] = all[i];
        }
    }
    for (size_t i = 0; i < m && i < max; i++)
        out[i] = all[i];
    free(all);
    return (long)m;
}
