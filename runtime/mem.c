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
 *
 * Large blocks (over MEM_SMALL_MAX) come from chunks the runtime maps
 * itself (1 MiB, or a multiple for a bigger block), never from malloc():
 * CPython sends them to the C library, which is what the model stands for,
 * but a heap snapshot that included glibc's pages would count libuv's,
 * jansson's and glibc's own writes as heap copies.  A chunk is carved
 * first-fit into blocks with a 16-byte header (glibc's overhead), freed
 * blocks coalesce with their neighbours, and a chunk whose blocks are all
 * free is unmapped (as glibc trims).  Chunks are found through a second
 * radix map, one bit per MiB they cover.
 * Read mem_alloc() and mem_free() first.
 */
#include "mem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

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

/* A large block's header (16 bytes) and, while free, its list links. */
typedef struct lhdr {
    uint32_t chunk;                 /* index in the chunk table */
    uint32_t used;                  /* LARGE_USED, or 0: free */
    uint32_t size;                  /* bytes, header included; x16 */
    uint32_t prev_size;             /* the block before it, 0 if first */
} lhdr_t;
typedef struct lfree {
    lhdr_t h;
    struct lfree *next, *prev;      /* its bin's list */
} lfree_t;
#define LARGE_USED     0x1A2E5B10u
#define CHUNK_SIZE     MEM_ARENA_SIZE   /* chunks are MiB-aligned too */
#define LARGE_NBINS    32

typedef struct chunk {
    uintptr_t base;                 /* 0: slot unused */
    size_t size;
    size_t nused;                   /* blocks in use */
} chunk_t;

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
    uint64_t *lradix[(size_t)1 << 16]; /* the same for large chunks */
    chunk_t *chunks;                /* large chunks */
    size_t nchunks, chunks_live;
    lfree_t *bins[LARGE_NBINS];     /* free large blocks by log2 size */
    size_t large_in_use, large_bytes;
    size_t allocs, frees;
    void (*release_hook)(void *arg, uintptr_t start, uintptr_t end);
    void *release_arg;
    uint64_t hook_ns;               /* time spent in the hook */
} M;

void
mem_set_release_hook(void (*fn)(void *arg, uintptr_t start, uintptr_t end),
                     void *arg)
{
    M.release_hook = fn;
    M.release_arg = arg;
}

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
about_to_release(uintptr_t start, uintptr_t end)
{
    if (M.release_hook && start < end) {
        uint64_t t0 = mono_ns();
        M.release_hook(M.release_arg, start, end);
        M.hook_ns += mono_ns() - t0;
    }
}

uint64_t
mem_hook_ns(void)
{
    return M.hook_ns;
}

static int
radix_get_in(uint64_t **radix, uintptr_t addr)
{
    uintptr_t key = addr >> ARENA_SHIFT;
    if (key >> KEY_BITS)
        return 0;
    uint64_t *leaf = radix[key >> L2_BITS];
    if (leaf == NULL)
        return 0;
    uintptr_t bit = key & (((uintptr_t)1 << L2_BITS) - 1);
    return (int)((leaf[bit >> 6] >> (bit & 63)) & 1);
}

static int
radix_get(uintptr_t addr)
{
    return radix_get_in(M.radix, addr);
}

static int
radix_set_in(uint64_t **radix, uintptr_t addr, int on)
{
    uintptr_t key = addr >> ARENA_SHIFT;
    if (key >> KEY_BITS)
        return -1;
    uint64_t **leafp = &radix[key >> L2_BITS];
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

static int
radix_set(uintptr_t addr, int on)
{
    return radix_set_in(M.radix, addr, on);
}

int
mem_in_arena(const void *p)
{
    return radix_get((uintptr_t)p);
}

/* Map size bytes (a multiple of MEM_ARENA_SIZE) aligned to the arena
 * size. */
static void *
map_aligned_n(size_t size)
{
    size_t len = size + MEM_ARENA_SIZE;
    uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + MEM_ARENA_SIZE - 1)
                      & ~(uintptr_t)(MEM_ARENA_SIZE - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = len - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((uint8_t *)start + size, tail);
    /* Keep copy-on-write 4 KiB-granular whatever the THP mode. */
    (void)madvise((void *)start, size, MADV_NOHUGEPAGE);
    return (void *)start;
}

static void *
map_aligned(void)
{
    return map_aligned_n(MEM_ARENA_SIZE);
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

/* ---- large blocks ----------------------------------------------------
 * Chunks hold blocks back to back: [hdr|payload][hdr|payload]...; a
 * block's size covers its header, prev_size finds the block before.  Free
 * blocks sit in bins by floor(log2(size)), searched first-fit from the
 * request's bin up. */

#define HDR(p)        ((lhdr_t *)(p) - 1)
#define NEXT_BLK(h)   ((lhdr_t *)((uint8_t *)(h) + (h)->size))
#define PREV_BLK(h)   ((lhdr_t *)((uint8_t *)(h) - (h)->prev_size))

static unsigned
bin_of(size_t size)
{
    unsigned b = 0;
    while ((size >> (b + 1)) && b + 1 < LARGE_NBINS)
        b++;
    return b;
}

static void
bin_insert(lhdr_t *h)
{
    lfree_t *f = (lfree_t *)h;
    unsigned b = bin_of(h->size);
    ALLOC(f);
    f->prev = NULL;
    f->next = M.bins[b];
    if (f->next) {
        ALLOC(f->next);
        f->next->prev = f;
    }
    M.bins[b] = f;
}

static void
bin_remove(lhdr_t *h)
{
    lfree_t *f = (lfree_t *)h;
    if (f->prev) {
        ALLOC(f->prev);
        f->prev->next = f->next;
    } else {
        M.bins[bin_of(h->size)] = f->next;
    }
    if (f->next) {
        ALLOC(f->next);
        f->next->prev = f->prev;
    }
}

static uintptr_t
chunk_end(const chunk_t *c)
{
    return c->base + c->size;
}

static int
chunk_new(size_t need)
{
    size_t size = (need + CHUNK_SIZE - 1) & ~(size_t)(CHUNK_SIZE - 1);
    size_t i;
    if (size > UINT32_MAX)
        return -1;
    for (i = 0; i < M.nchunks && M.chunks[i].base; i++)
        ;
    if (i == M.nchunks) {
        size_t n = M.nchunks ? M.nchunks * 2 : 16;
        chunk_t *t = realloc(M.chunks, n * sizeof(*t));
        if (t == NULL)
            return -1;
        memset(&t[M.nchunks], 0, (n - M.nchunks) * sizeof(*t));
        M.chunks = t;
        M.nchunks = n;
    }
    void *base = map_aligned_n(size);
    if (base == NULL)
        return -1;
    for (uintptr_t a = (uintptr_t)base; a < (uintptr_t)base + size;
         a += CHUNK_SIZE) {
        if (radix_set_in(M.lradix, a, 1) < 0) {
            for (uintptr_t b = (uintptr_t)base; b < a; b += CHUNK_SIZE)
                radix_set_in(M.lradix, b, 0);
            munmap(base, size);
            return -1;
        }
    }
    chunk_t *c = &M.chunks[i];
    c->base = (uintptr_t)base;
    c->size = size;
    c->nused = 0;
    M.chunks_live++;
    lhdr_t *h = base;               /* one free block: the whole chunk */
    h->chunk = (uint32_t)i;
    h->used = 0;
    h->size = (uint32_t)size;
    h->prev_size = 0;
    bin_insert(h);
    return 0;
}

static void
chunk_release(chunk_t *c)
{
    about_to_release(c->base, chunk_end(c));
    for (uintptr_t a = c->base; a < chunk_end(c); a += CHUNK_SIZE)
        radix_set_in(M.lradix, a, 0);
    munmap((void *)c->base, c->size);
    c->base = 0;
    c->size = 0;
    M.chunks_live--;
}

static lhdr_t *
bin_find(size_t need)
{
    for (unsigned b = bin_of(need); b < LARGE_NBINS; b++)
        for (lfree_t *f = M.bins[b]; f; f = f->next)
            if (f->h.size >= need)
                return &f->h;
    return NULL;
}

static void *
large_alloc(size_t n)
{
    if (n > (size_t)UINT32_MAX - 2 * sizeof(lhdr_t))
        return NULL;
    size_t need = (n + sizeof(lhdr_t) + MEM_ALIGNMENT - 1)
                  & ~(size_t)(MEM_ALIGNMENT - 1);
    lhdr_t *h = bin_find(need);
    if (h == NULL) {
        if (chunk_new(need) < 0)
            return NULL;
        h = bin_find(need);
        RT_ASSERT(h != NULL);
    }
    bin_remove(h);
    chunk_t *c = &M.chunks[h->chunk];
    ALLOC(h);
    if (h->size - need >= 64) {     /* split off the rest */
        lhdr_t *r = (lhdr_t *)((uint8_t *)h + need);
        ALLOC(r);
        r->chunk = h->chunk;
        r->used = 0;
        r->size = (uint32_t)(h->size - need);
        r->prev_size = (uint32_t)need;
        h->size = (uint32_t)need;
        if ((uintptr_t)NEXT_BLK(r) < chunk_end(c)) {
            ALLOC(NEXT_BLK(r));
            NEXT_BLK(r)->prev_size = r->size;
        }
        bin_insert(r);
    }
    h->used = LARGE_USED;
    c->nused++;
    M.large_in_use++;
    M.large_bytes += h->size;
    return h + 1;
}

static void
large_free(void *ptr)
{
    lhdr_t *h = HDR(ptr);
    RT_ASSERT(h->used == LARGE_USED);
    chunk_t *c = &M.chunks[h->chunk];
    ALLOC(h);
    M.large_in_use--;
    M.large_bytes -= h->size;
    h->used = 0;
    c->nused--;
    if (c->nused == 0) {            /* every block free: trim the chunk */
        for (lhdr_t *b = (lhdr_t *)c->base; (uintptr_t)b < chunk_end(c);
             b = NEXT_BLK(b))
            if (b != h)
                bin_remove(b);
        chunk_release(c);
        return;
    }
    lhdr_t *next = NEXT_BLK(h);
    if ((uintptr_t)next < chunk_end(c) && next->used == 0) {
        bin_remove(next);
        h->size += next->size;
    }
    if (h->prev_size) {
        lhdr_t *prev = PREV_BLK(h);
        if (prev->used == 0) {
            bin_remove(prev);
            ALLOC(prev);
            prev->size += h->size;
            h = prev;
        }
    }
    next = NEXT_BLK(h);
    if ((uintptr_t)next < chunk_end(c)) {
        ALLOC(next);
        next->prev_size = h->size;
    }
    bin_insert(h);
}

static int
in_large(const void *p)
{
    return radix_get_in(M.lradix, (uintptr_t)p);
}

/* ---- trimming (rt_warmup) ---------------------------------------------
 * What a warm-up gives back before fork, as Ruby's Process.warmup frees
 * its empty heap pages:
 *   1. every wholly empty arena is unmapped, the one the allocator keeps
 *      for reuse included (at most one exists: see small_free);
 *   2. every empty pool of the arenas left gives back its pages after the
 *      first with MADV_DONTNEED.  The first page holds the pool's header,
 *      whose nextpool is the arena's freepools link, so it stays: the pool
 *      stays empty and reusable, and the pages given back come back zeroed
 *      when it is carved again.  With 4 KiB pools (MEM_SMALL_ARENAS) a pool
 *      is its header's page and gives nothing.
 * A pool given back is marked nextoffset = 0 (a carved pool's is at least
 * POOL_OVERHEAD + a block; alloc_from_new_pool sets it again), so a
 * second call neither counts it again nor writes its page.  Pages are
 * counted with mincore(): those resident, so those actually given back. */

static size_t
resident_pages(uintptr_t start, uintptr_t end)
{
    size_t ps = rt__page_size(), n = (end - start) / ps, count = 0;
    unsigned char vec[256];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof vec ? n - done : sizeof vec;
        if (mincore((void *)(start + done * ps), k * ps, vec) < 0)
            return n;               /* cannot tell: assume all were */
        for (size_t i = 0; i < k; i++)
            count += vec[i] & 1;
        done += k;
    }
    return count;
}

size_t
mem_trim(size_t *pools, size_t *arenas)
{
    size_t np = 0, na = 0, pages = 0, ps = rt__page_size();
    for (size_t i = 0; i < M.narenas; i++) {
        arena_t *a = &M.arenas[i];
        if (a->address == 0 || a->nfreepools != MEM_POOLS_PER_ARENA)
            continue;
        pages += resident_pages(a->address, a->address + MEM_ARENA_SIZE);
        usable_unlink(a);           /* every pool free: it is usable */
        release_arena(a);
        na++;
    }
    for (size_t i = 0; i < M.narenas; i++) {
        arena_t *a = &M.arenas[i];
        if (a->address == 0)
            continue;
        for (pool_t *p = a->freepools; p != NULL; p = p->nextpool) {
            uintptr_t start = (uintptr_t)p + ps;
            uintptr_t end = (uintptr_t)p + MEM_POOL_SIZE;
            if (p->nextoffset == 0 || start >= end)
                continue;           /* given back before, or no room */
            size_t r = resident_pages(start, end);
            if (madvise((void *)start, end - start, MADV_DONTNEED) < 0)
                continue;
            ALLOC(p);
            p->nextoffset = 0;
            pages += r;
            np++;
        }
    }
    if (pools)
        *pools = np;
    if (arenas)
        *arenas = na;
    return pages;
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
    M.initialized = 1;
    return 0;
}

static void side_fini(void);

void
mem_fini(void)
{
    side_fini();
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
    for (size_t i = 0; i < M.nchunks; i++)
        if (M.chunks[i].base)
            chunk_release(&M.chunks[i]);
    for (size_t i = 0; i < sizeof(M.radix) / sizeof(M.radix[0]); i++) {
        free(M.radix[i]);
        free(M.lradix[i]);
    }
    free(M.arenas);
    free(M.chunks);
    uint64_t hook_ns = M.hook_ns;
    memset(&M, 0, sizeof(M));
    M.hook_ns = hook_ns;            /* mem_hook_ns() counts on */
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
        old = HDR(p)->size - sizeof(lhdr_t);
        size_t need = (n + sizeof(lhdr_t) + MEM_ALIGNMENT - 1)
                      & ~(size_t)(MEM_ALIGNMENT - 1);
        if (n > MEM_SMALL_MAX && need == HDR(p)->size)
            return p;               /* the same block size */
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
    if (in_large(p) && ((uintptr_t)p & (MEM_ALIGNMENT - 1)) == 0
        && HDR(p)->used == LARGE_USED)
        return HDR(p)->size;
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
    size_t n = M.arenas_live + M.chunks_live, k = 0;
    mem_range_t *all = rt__scratch_realloc(NULL, (n ? n : 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    for (size_t i = 0; i < M.narenas; i++)
        if (M.arenas[i].address) {
            all[k].start = M.arenas[i].address;
            all[k++].end = M.arenas[i].address + MEM_ARENA_SIZE;
        }
    for (size_t i = 0; i < M.nchunks; i++)
        if (M.chunks[i].base) {
            all[k].start = M.chunks[i].base;
            all[k++].end = chunk_end(&M.chunks[i]);
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

/* ---- side memory (--gc-layout side|bitmap) -----------------------------
 * The collector's slots or bitmaps, in mappings of their own: never among
 * mem_ranges() (the heap's pages are the objects'), listed by
 * mem_side_ranges() so a worker can count what a collection copies there.
 * Mapped zeroed, kept until mem_fini(). */

static struct {
    mem_range_t *maps;
    size_t n, cap;
} SD;

void *
mem_side_map(size_t len)
{
    size_t pg = rt__page_size();
    if (rt__fail_now())
        return NULL;
    len = (len + pg - 1) & ~(size_t)(pg - 1);
    if (SD.n == SD.cap) {
        size_t cap = SD.cap ? SD.cap * 2 : 64;
        mem_range_t *m = realloc(SD.maps, cap * sizeof(*m));
        if (m == NULL)
            return NULL;
        SD.maps = m;
        SD.cap = cap;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, len, MADV_NOHUGEPAGE);     /* 4 KiB copies, as the heap */
    SD.maps[SD.n].start = (uintptr_t)p;
    SD.maps[SD.n++].end = (uintptr_t)p + len;
    return p;
}

size_t
mem_side_resident(void)
{
    size_t pages = 0, pg = rt__page_size();
    unsigned char vec[256];
    for (size_t i = 0; i < SD.n; i++) {
        uintptr_t a = SD.maps[i].start;
        while (a < SD.maps[i].end) {
            size_t n = (SD.maps[i].end - a) / pg;
            if (n > sizeof vec)
                n = sizeof vec;
            if (mincore((void *)a, n * pg, vec) == 0)
                for (size_t k = 0; k < n; k++)
                    pages += vec[k] & 1;
            a += n * pg;
        }
    }
    return pages;
}

long
mem_side_ranges(mem_range_t *out, size_t max)
{
    size_t k = SD.n;
    mem_range_t *all = rt__scratch_realloc(NULL, (k ? k : 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    if (k > 0)                      /* none mapped under inline */
        memcpy(all, SD.maps, k * sizeof(*all));
    qsort(all, k, sizeof(*all), range_cmp);
    size_t m = 0;
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

static void
side_fini(void)
{
    for (size_t i = 0; i < SD.n; i++)
        munmap((void *)SD.maps[i].start, SD.maps[i].end - SD.maps[i].start);
    free(SD.maps);
    memset(&SD, 0, sizeof SD);
}
