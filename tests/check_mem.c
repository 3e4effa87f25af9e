/*
 * check_mem.c -- unit tests for runtime/mem.c: size classes, alignment,
 * block reuse and lazy carving, pool states (used/full/empty), arena
 * release and ordering, large blocks, mem_ranges(), mem_realloc(),
 * mem_fail_after(), and a randomized run against a reference model.
 * Every expectation is derived from MEM_ARENA_SIZE, MEM_POOL_SIZE and
 * MEM_POOLS_PER_ARENA, and the pool header size is observed, not assumed,
 * so the file passes with -DMEM_SMALL_ARENAS too.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "support.h"

#define POOL_OF(p)   ((uintptr_t)(p) & ~(uintptr_t)(MEM_POOL_SIZE - 1))
#define ARENA_OF(p)  ((uintptr_t)(p) & ~(uintptr_t)(MEM_ARENA_SIZE - 1))
/* A large block's bytes: a 16-byte header, rounded to 16 (glibc's). */
#define LB(n)        ((((size_t)(n)) + 16 + 15) & ~(size_t)15)

static void setup(void)    { ck_assert_int_eq(mem_init(), 0); }
static void teardown(void) { mem_fini(); }

static mem_stats_t
stats(void)
{
    mem_stats_t st;
    mem_get_stats(&st);
    return st;
}

/* Offset of the first block of a fresh pool from the pool's start: the
 * pool header, rounded up to the alignment.  p must be that first block. */
static size_t
header_of(const void *p)
{
    size_t hdr = (uintptr_t)p - POOL_OF(p);
    ck_assert_uint_eq(hdr % MEM_ALIGNMENT, 0);
    ck_assert_uint_ge(hdr, MEM_ALIGNMENT);
    ck_assert_uint_lt(hdr, MEM_POOL_SIZE / 4);
    return hdr;
}

/* Observe the header size with a class nobody has used yet in this test. */
static size_t
observe_header(size_t size)
{
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.class_pools[MEM_SIZE2CLASS(size)], 0);
    void *p = mem_alloc(size);
    ck_assert_ptr_nonnull(p);
    size_t hdr = header_of(p);
    mem_free(p);
    return hdr;
}

static size_t
blocks_per_pool(size_t hdr, size_t size)
{
    return (MEM_POOL_SIZE - hdr) / size;
}

/* xorshift64*: a fixed, portable random sequence. */
static uint64_t rng_state;
static uint64_t
rng(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void
shuffle(void **v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng() % i);
        void *t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- size classes and alignment --------------------------------------- */

START_TEST(mem_size_classes)
{
    for (size_t i = 0; i < MEM_NCLASSES; i++)
        ck_assert_uint_eq(MEM_CLASS2SIZE(i), (i + 1) * 16);
    ck_assert_uint_eq(MEM_CLASS2SIZE(MEM_NCLASSES - 1), MEM_SMALL_MAX);
    for (size_t n = 1; n <= MEM_SMALL_MAX; n++) {
        size_t c = MEM_SIZE2CLASS(n);
        ck_assert_uint_lt(c, MEM_NCLASSES);
        ck_assert_uint_eq(c, (n + 15) / 16 - 1);
        ck_assert_uint_ge(MEM_CLASS2SIZE(c), n);        /* fits */
        ck_assert_uint_lt(MEM_CLASS2SIZE(c), n + 16);   /* the smallest */
        /* The allocator files the block under that class, and only it. */
        void *p = mem_alloc(n);
        ck_assert_ptr_nonnull(p);
        memset(p, 0x5A, n);
        mem_stats_t st = stats();
        for (size_t k = 0; k < MEM_NCLASSES; k++)
            ck_assert_uint_eq(st.class_blocks[k], k == c);
        ck_assert_uint_eq(st.blocks_in_use, 1);
        ck_assert_uint_eq(st.bytes_in_use, MEM_CLASS2SIZE(c));
        ck_assert_uint_eq(st.large_in_use, 0);
        mem_free(p);
    }
    ck_assert_uint_eq(stats().blocks_in_use, 0);
}
END_TEST

START_TEST(mem_header_same_for_every_class)
{
    size_t hdr = 0;
    for (size_t c = 0; c < MEM_NCLASSES; c++) {
        void *p = mem_alloc(MEM_CLASS2SIZE(c));   /* each a fresh pool */
        ck_assert_ptr_nonnull(p);
        if (c == 0)
            hdr = header_of(p);
        ck_assert_uint_eq((uintptr_t)p - POOL_OF(p), hdr);
        /* Hold it, so the next class cannot reuse this pool. */
    }
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.pools_used, MEM_NCLASSES);
    ck_assert_uint_eq(st.blocks_in_use, MEM_NCLASSES);
}
END_TEST

START_TEST(mem_alignment)
{
    enum { N = 2200 };
    static void *v[N];
    size_t k = 0;
    for (size_t n = 0; n <= 2048; n++) {
        v[k] = mem_alloc(n);
        ck_assert_ptr_nonnull(v[k]);
        ck_assert_uint_eq((uintptr_t)v[k] % MEM_ALIGNMENT, 0);
        memset(v[k], (int)n, n);
        k++;
    }
    static const size_t big[] = { 4095, 4096, 4097, 65536, 131071,
                                  200000, (size_t)1 << 20, 3000001 };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        v[k] = mem_alloc(big[i]);
        ck_assert_ptr_nonnull(v[k]);
        ck_assert_uint_eq((uintptr_t)v[k] % MEM_ALIGNMENT, 0);
        memset(v[k], 0x11, big[i]);
        ck_assert(!mem_in_arena(v[k]));
        k++;
    }
    for (size_t i = 0; i < k; i++)
        mem_free(v[i]);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.large_in_use, 0);
    ck_assert_uint_eq(st.large_bytes, 0);
}
END_TEST

START_TEST(mem_zero_size)
{
    void *a = mem_alloc(0), *b = mem_alloc(0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert(mem_in_arena(a));
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.class_blocks[0], 2);         /* a 1-byte block */
    ck_assert_uint_eq(st.blocks_in_use, 2);
    ck_assert_ptr_eq(mem_realloc(a, 0), a);           /* same class */
    ck_assert_ptr_eq(mem_realloc(a, MEM_ALIGNMENT), a);
    mem_free(a);
    mem_free(b);
    ck_assert_uint_eq(stats().blocks_in_use, 0);
}
END_TEST

START_TEST(mem_free_null_ignored)
{
    size_t frees = stats().frees;
    mem_free(NULL);
    ck_assert_uint_eq(stats().frees, frees);
    void *p = mem_realloc(NULL, 40);                  /* = mem_alloc(40) */
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(stats().class_blocks[MEM_SIZE2CLASS(40)], 1);
    mem_free(p);
}
END_TEST

START_TEST(mem_stats_counts_calls)
{
    void *v[10];
    for (int i = 0; i < 10; i++)
        v[i] = mem_alloc(i < 5 ? 24 : 1000);
    for (int i = 0; i < 7; i++)
        mem_free(v[i]);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.allocs, 10);
    ck_assert_uint_eq(st.frees, 7);
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.large_in_use, 3);
    ck_assert_uint_eq(st.large_bytes, 3 * LB(1000));
    for (int i = 7; i < 10; i++)
        mem_free(v[i]);
}
END_TEST

/* ---- blocks within a pool --------------------------------------------- */

START_TEST(mem_reuse_lifo)
{
    void *a = mem_alloc(64), *b = mem_alloc(64), *keep = mem_alloc(64);
    ck_assert_ptr_eq((void *)POOL_OF(a), (void *)POOL_OF(b));
    mem_free(a);                    /* keep holds the pool: it stays used */
    mem_free(b);
    ck_assert_ptr_eq(mem_alloc(64), b);
    ck_assert_ptr_eq(mem_alloc(64), a);
    /* The next one is never-used memory again, past keep. */
    void *c = mem_alloc(64);
    ck_assert_ptr_eq(c, (uint8_t *)keep + 64);
    mem_free(a);
    mem_free(b);
    mem_free(c);
    mem_free(keep);
}
END_TEST

START_TEST(mem_lazy_carving)
{
    const size_t size = 48;
    void *first = mem_alloc(size);
    ck_assert_ptr_nonnull(first);
    size_t hdr = header_of(first);
    uintptr_t pool = POOL_OF(first);
    size_t bpp = blocks_per_pool(hdr, size);

    /* Only the page holding the header and the first blocks is touched:
     * the rest of the pool and of the arena are not yet resident. */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t npages = MEM_ARENA_SIZE / pg;
    unsigned char *vec = malloc(npages);
    ck_assert_ptr_nonnull(vec);
    ck_assert_int_eq(mincore((void *)ARENA_OF(first), MEM_ARENA_SIZE, vec),
                     0);
    size_t touched = (hdr + 2 * size + pg - 1) / pg;
    ck_assert_uint_eq(ARENA_OF(first), pool);         /* the arena's first */
    for (size_t i = touched; i < npages; i++)
        ck_assert_msg(!(vec[i] & 1), "page %zu of the arena is resident", i);
    free(vec);

    /* Every block of the pool, in address order, then a new pool. */
    void **v = malloc(bpp * sizeof(*v));
    v[0] = first;
    for (size_t i = 1; i < bpp; i++) {
        v[i] = mem_alloc(size);
        ck_assert_ptr_eq(v[i], (void *)(pool + hdr + i * size));
    }
    ck_assert_uint_le(hdr + bpp * size, MEM_POOL_SIZE);
    void *next = mem_alloc(size);
    ck_assert_uint_ne(POOL_OF(next), pool);
    ck_assert_uint_eq((uintptr_t)next - POOL_OF(next), hdr);
    mem_free(next);
    for (size_t i = 0; i < bpp; i++)
        mem_free(v[i]);
    free(v);
}
END_TEST

/* ---- pool states ------------------------------------------------------ */

START_TEST(mem_pool_used_full_empty)
{
    const size_t size = 64, c = MEM_SIZE2CLASS(64);
    size_t hdr = observe_header(16);
    size_t bpp = blocks_per_pool(hdr, size);
    void **v = malloc((bpp + 1) * sizeof(*v));
    mem_stats_t st;

    for (size_t i = 0; i < bpp - 1; i++)
        v[i] = mem_alloc(size);
    st = stats();
    ck_assert_uint_eq(st.pools_used, 1);
    ck_assert_uint_eq(st.pools_full, 0);
    ck_assert_uint_eq(st.class_blocks[c], bpp - 1);

    v[bpp - 1] = mem_alloc(size);                     /* used -> full */
    st = stats();
    ck_assert_uint_eq(st.pools_used, 0);
    ck_assert_uint_eq(st.pools_full, 1);
    ck_assert_uint_eq(st.class_pools[c], 1);
    ck_assert_uint_eq(st.class_blocks[c], bpp);
    for (size_t i = 0; i < bpp; i++)
        ck_assert_uint_eq(POOL_OF(v[i]), POOL_OF(v[0]));

    v[bpp] = mem_alloc(size);                         /* a second pool */
    ck_assert_uint_ne(POOL_OF(v[bpp]), POOL_OF(v[0]));
    st = stats();
    ck_assert_uint_eq(st.pools_used, 1);
    ck_assert_uint_eq(st.pools_full, 1);
    mem_free(v[bpp]);                                 /* used -> empty */
    st = stats();
    ck_assert_uint_eq(st.pools_used, 0);
    ck_assert_uint_eq(st.pools_full, 1);

    void *mid = v[bpp / 2];
    mem_free(mid);                                    /* full -> used */
    st = stats();
    ck_assert_uint_eq(st.pools_used, 1);
    ck_assert_uint_eq(st.pools_full, 0);
    ck_assert_uint_eq(st.class_blocks[c], bpp - 1);
    ck_assert_ptr_eq(mem_alloc(size), mid);           /* used -> full */
    st = stats();
    ck_assert_uint_eq(st.pools_full, 1);
    ck_assert_uint_eq(st.pools_used, 0);

    for (size_t i = 0; i < bpp; i++) {
        mem_free(v[i]);
        st = stats();
        if (i + 1 < bpp) {
            ck_assert_uint_eq(st.pools_used, 1);
            ck_assert_uint_eq(st.pools_full, 0);
        }
    }
    ck_assert_uint_eq(st.pools_used, 0);              /* used -> empty */
    ck_assert_uint_eq(st.pools_full, 0);
    /* The 64-byte class reused observe_header's pool, then carved one. */
    ck_assert_uint_eq(st.pools_empty, 2);
    ck_assert_uint_eq(st.class_pools[c], 0);
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.pools_empty + st.pools_unused,
                      MEM_POOLS_PER_ARENA);
    free(v);
}
END_TEST

/* Every class: exactly (pool - header) / size blocks make a pool full. */
START_TEST(mem_pool_capacity_every_class)
{
    size_t hdr = observe_header(MEM_SMALL_MAX);
    for (size_t c = 0; c < MEM_NCLASSES; c++) {
        size_t size = MEM_CLASS2SIZE(c), bpp = blocks_per_pool(hdr, size);
        void **v = malloc((bpp + 1) * sizeof(*v));
        for (size_t i = 0; i < bpp; i++) {
            v[i] = mem_alloc(size);
            ck_assert_uint_eq(POOL_OF(v[i]), POOL_OF(v[0]));
        }
        mem_stats_t st = stats();
        ck_assert_uint_eq(st.pools_full, 1);
        ck_assert_uint_eq(st.pools_used, 0);
        v[bpp] = mem_alloc(size);
        ck_assert_uint_ne(POOL_OF(v[bpp]), POOL_OF(v[0]));
        st = stats();
        ck_assert_uint_eq(st.pools_full, 1);
        ck_assert_uint_eq(st.pools_used, 1);
        ck_assert_uint_eq(st.class_pools[c], 2);
        for (size_t i = 0; i <= bpp; i++)
            mem_free(v[i]);
        ck_assert_uint_eq(stats().blocks_in_use, 0);
        free(v);
    }
}
END_TEST

START_TEST(mem_empty_pool_other_class)
{
    void *keep = mem_alloc(32);                 /* pool 0, stays used */
    void *a = mem_alloc(16);                    /* pool 1 */
    size_t hdr = header_of(a);
    uintptr_t pool = POOL_OF(a);
    ck_assert_uint_ne(pool, POOL_OF(keep));
    mem_free(a);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.pools_empty, 1);
    ck_assert_uint_eq(st.class_pools[0], 0);

    /* An empty pool is preferred to a never-carved one, whatever class. */
    void *b = mem_alloc(256);
    ck_assert_ptr_eq(b, (void *)(pool + hdr));
    memset(b, 0x77, 256);
    st = stats();
    ck_assert_uint_eq(st.pools_empty, 0);
    ck_assert_uint_eq(st.pools_used, 2);
    ck_assert_uint_eq(st.class_pools[MEM_SIZE2CLASS(256)], 1);
    ck_assert_uint_eq(st.class_blocks[MEM_SIZE2CLASS(256)], 1);
    /* Carving restarts for the new size: the next block follows b. */
    ck_assert_ptr_eq(mem_alloc(256), (uint8_t *)b + 256);
    mem_free((uint8_t *)b + 256);
    mem_free(b);
    mem_free(keep);
}
END_TEST

/* ---- arenas ----------------------------------------------------------- */

/* Blocks of size that fill n arenas' pools exactly. */
static size_t
blocks_per_arena(size_t hdr, size_t size)
{
    return MEM_POOLS_PER_ARENA * blocks_per_pool(hdr, size);
}

START_TEST(mem_arena_release)
{
    const size_t size = MEM_SMALL_MAX;
    size_t hdr = observe_header(size);
    size_t per = blocks_per_arena(hdr, size);
    size_t n = 3 * per + per / 2;               /* 4 arenas, the last half */
    void **v = malloc(n * sizeof(*v));
    rng_state = 0x9E3779B97F4A7C15ULL;

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            v[i] = mem_alloc(size);
            ck_assert_ptr_nonnull(v[i]);
        }
        mem_stats_t st = stats();
        ck_assert_uint_eq(st.arenas_live, 4);
        /* The kept empty arena of round 0 is reused, not remapped. */
        ck_assert_uint_eq(st.arenas_allocated, round == 0 ? 4 : 7);
        ck_assert_uint_eq(st.pools_full, n / blocks_per_pool(hdr, size));
        ck_assert_uint_eq(st.blocks_in_use, n);

        if (round == 0)
            shuffle(v, n);                      /* any order drains them */
        for (size_t i = 0; i < n; i++)
            mem_free(v[i]);
        st = stats();
        ck_assert_uint_eq(st.arenas_live, 1);   /* one kept for reuse */
        ck_assert_uint_eq(st.arenas_released, round == 0 ? 3 : 6);
        ck_assert_uint_eq(st.arenas_allocated - st.arenas_released, 1);
        ck_assert_uint_eq(st.blocks_in_use, 0);
        ck_assert_uint_eq(st.pools_used + st.pools_full, 0);
        ck_assert_uint_eq(st.pools_empty + st.pools_unused,
                          MEM_POOLS_PER_ARENA);

        /* Released arenas are gone from the radix map; one answers. */
        size_t answering = 0;
        uintptr_t bases[8];
        size_t nbases = 0;
        for (size_t i = 0; i < n; i++) {
            uintptr_t base = ARENA_OF(v[i]);
            size_t j = 0;
            while (j < nbases && bases[j] != base)
                j++;
            if (j == nbases) {
                ck_assert_uint_lt(nbases, 8);
                bases[nbases++] = base;
                answering += mem_in_arena((void *)base) != 0;
            }
        }
        ck_assert_uint_eq(nbases, 4);
        ck_assert_uint_eq(answering, 1);
    }
    free(v);
}
END_TEST

/* Past the first table of arena slots (which grows by realloc), with slots
 * freed and reused in between. */
START_TEST(mem_arena_table_grows)
{
    const size_t size = MEM_SMALL_MAX, narenas = 40;
    size_t hdr = observe_header(size);
    size_t per = blocks_per_arena(hdr, size);
    size_t n = narenas * per;
    void **v = malloc(n * sizeof(*v));
    rng_state = 777;
    for (size_t i = 0; i < n; i++) {
        v[i] = mem_alloc(size);
        ck_assert_ptr_nonnull(v[i]);
        ((uint8_t *)v[i])[0] = (uint8_t)i;
    }
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.arenas_live, narenas);
    ck_assert_uint_eq(st.pools_full, narenas * MEM_POOLS_PER_ARENA);

    /* Empty every other arena (slots go back to the unused list), then
     * fill them again together with ten more arenas. */
    for (size_t i = 0; i < n; i++)
        if ((i / per) % 2 == 1) {
            mem_free(v[i]);
            v[i] = NULL;
        }
    st = stats();
    ck_assert_uint_eq(st.arenas_live, narenas / 2 + 1);
    ck_assert_uint_eq(st.arenas_released, narenas / 2 - 1);
    for (size_t i = 0; i < n; i++)
        if (v[i] == NULL)
            v[i] = mem_alloc(size);
    void **w = malloc(10 * per * sizeof(*w));
    for (size_t i = 0; i < 10 * per; i++)
        w[i] = mem_alloc(size);
    st = stats();
    ck_assert_uint_eq(st.arenas_live, narenas + 10);
    ck_assert_uint_eq(st.arenas_allocated, narenas + narenas / 2 - 1 + 10);
    ck_assert_uint_eq(st.blocks_in_use, n + 10 * per);
    for (size_t i = 0; i < n; i++) {
        ck_assert(mem_in_arena(v[i]));
        if ((i / per) % 2 == 0)
            ck_assert_uint_eq(((uint8_t *)v[i])[0], (uint8_t)i);
    }
    shuffle(v, n);
    for (size_t i = 0; i < n; i++)
        mem_free(v[i]);
    for (size_t i = 0; i < 10 * per; i++)
        mem_free(w[i]);
    st = stats();
    ck_assert_uint_eq(st.arenas_live, 1);
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.arenas_allocated - st.arenas_released, 1);
    free(w);
    free(v);
}
END_TEST

/*
 * Fill two arenas with full pools of size-512 blocks, empty k_first pools
 * of the first arena and k_second of the second (plus some blocks of other
 * pools of the emptier one), then allocate another class: its pools come
 * from the arena with fewer free pools until that one is full.
 */
static void
check_fullest_first(size_t k_first, size_t k_second)
{
    const size_t size = MEM_SMALL_MAX;
    size_t hdr = observe_header(size);
    size_t n = 2 * blocks_per_arena(hdr, size);
    void **v = malloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = mem_alloc(size);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.arenas_live, 2);
    ck_assert_uint_eq(st.pools_full, 2 * MEM_POOLS_PER_ARENA);
    ck_assert_uint_eq(st.pools_unused + st.pools_empty, 0);

    uintptr_t first = ARENA_OF(v[0]), second = ARENA_OF(v[n - 1]);
    ck_assert_uint_ne(first, second);
    uintptr_t fuller = k_first < k_second ? first : second;
    uintptr_t emptier = fuller == first ? second : first;
    size_t k_fuller = k_first < k_second ? k_first : k_second;
    size_t k_emptier = k_first < k_second ? k_second : k_first;

    /* Pools are numbered by their index within their arena. Free the
     * second arena's first, so that the order of events differs from
     * the expected order of use. */
    for (int pass = 0; pass < 2; pass++) {
        uintptr_t arena = pass == 0 ? second : first;
        size_t k = pass == 0 ? k_second : k_first;
        for (size_t i = 0; i < n; i++) {
            if (v[i] == NULL || ARENA_OF(v[i]) != arena)
                continue;
            size_t pidx = (POOL_OF(v[i]) - arena) / MEM_POOL_SIZE;
            /* Whole pools below k; in the emptier arena also every other
             * block of the remaining pools, so they are merely used. */
            if (pidx < k || (arena == emptier && i % 2 == 0)) {
                mem_free(v[i]);
                v[i] = NULL;
            }
        }
    }
    st = stats();
    ck_assert_uint_eq(st.arenas_live, 2);
    ck_assert_uint_eq(st.pools_empty, k_first + k_second);
    ck_assert_uint_eq(st.pools_used, MEM_POOLS_PER_ARENA - k_emptier);
    ck_assert_uint_eq(st.pools_full, MEM_POOLS_PER_ARENA - k_fuller);

    /* A class with no used pool: every pool it needs is a new one. */
    const size_t size2 = 128;
    size_t bpp2 = blocks_per_pool(hdr, size2);
    size_t n2 = k_fuller * bpp2 + 1;
    void **w = malloc(n2 * sizeof(*w));
    for (size_t i = 0; i < n2; i++) {
        w[i] = mem_alloc(size2);
        ck_assert_ptr_nonnull(w[i]);
        uintptr_t want = i < k_fuller * bpp2 ? fuller : emptier;
        ck_assert_msg(ARENA_OF(w[i]) == want,
                      "block %zu of class 128 in the wrong arena", i);
        size_t pidx = (POOL_OF(w[i]) - ARENA_OF(w[i])) / MEM_POOL_SIZE;
        ck_assert_uint_lt(pidx, want == first ? k_first : k_second);
    }
    st = stats();
    ck_assert_uint_eq(st.arenas_live, 2);
    ck_assert_uint_eq(st.class_pools[MEM_SIZE2CLASS(size2)], k_fuller + 1);
    for (size_t i = 0; i < n2; i++)
        mem_free(w[i]);
    for (size_t i = 0; i < n; i++)
        mem_free(v[i]);
    st = stats();
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.arenas_live, 1);
    free(w);
    free(v);
}

START_TEST(mem_usable_fullest_first)
{
    /* The second arena mostly freed: the first is fuller. */
    check_fullest_first(2, MEM_POOLS_PER_ARENA / 2);
    mem_fini();
    ck_assert_int_eq(mem_init(), 0);
    /* And the other way round, so address order cannot pass the test. */
    check_fullest_first(MEM_POOLS_PER_ARENA / 2, 3);
}
END_TEST

START_TEST(mem_fini_releases)
{
    void *small = mem_alloc(100), *large = mem_alloc(10000);
    ck_assert(mem_in_arena(small));
    (void)large;
    mem_fini();                     /* frees the large block too (ASan) */
    ck_assert(!mem_in_arena(small));
    ck_assert_int_eq(mem_init(), 0);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.arenas_live, 0);
    ck_assert_uint_eq(st.large_in_use, 0);
    ck_assert_uint_eq(st.allocs, 0);
}
END_TEST

START_TEST(mem_init_twice_fails)
{
    ck_assert_int_eq(mem_init(), -1);   /* the fixture already called it */
    void *p = mem_alloc(10);            /* and it is still usable */
    ck_assert_ptr_nonnull(p);
    mem_free(p);
    mem_fini();
    ck_assert_int_eq(mem_init(), 0);
    ck_assert_int_eq(mem_init(), -1);
}
END_TEST

/* ---- large blocks ----------------------------------------------------- */

START_TEST(mem_large_tracked)
{
    void *p = mem_alloc(MEM_SMALL_MAX + 1);
    void *q = mem_alloc(MEM_SMALL_MAX);
    void *r = mem_alloc(100000);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(r);
    memset(p, 1, MEM_SMALL_MAX + 1);
    memset(r, 2, 100000);
    ck_assert(!mem_in_arena(p));
    ck_assert(!mem_in_arena(r));
    ck_assert(mem_in_arena(q));
    ck_assert(mem_in_arena((uint8_t *)q + MEM_SMALL_MAX - 1));
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.large_in_use, 2);
    ck_assert_uint_eq(st.large_bytes, LB(MEM_SMALL_MAX + 1) + LB(100000));
    ck_assert_uint_eq(st.blocks_in_use, 1);
    ck_assert_uint_eq(st.bytes_in_use, MEM_SMALL_MAX);

    /* Pointers the allocator does not own. */
    int local;
    void *m = malloc(64);
    ck_assert(!mem_in_arena(&local));
    ck_assert(!mem_in_arena(m));
    ck_assert(!mem_in_arena(NULL));
    ck_assert(!mem_in_arena((void *)UINTPTR_MAX));
    free(m);

    mem_free(p);
    st = stats();
    ck_assert_uint_eq(st.large_in_use, 1);
    ck_assert_uint_eq(st.large_bytes, LB(100000));
    mem_free(r);
    mem_free(q);
    st = stats();
    ck_assert_uint_eq(st.large_in_use, 0);
    ck_assert_uint_eq(st.large_bytes, 0);
    ck_assert_uint_eq(st.blocks_in_use, 0);
}
END_TEST

/* Large blocks come from the allocator's own chunks, never from malloc:
 * a malloc()ed block (libuv's, jansson's, glibc's bookkeeping) is on no
 * page mem_ranges() lists.  Fails when large blocks go to malloc. */
START_TEST(mem_large_blocks_not_from_malloc)
{
    void *big[8], *own[8];
    for (int i = 0; i < 8; i++) {
        big[i] = mem_alloc(600 + (size_t)i * 300);
        own[i] = malloc(64);
        ck_assert_ptr_nonnull(big[i]);
        ck_assert_ptr_nonnull(own[i]);
    }
    size_t m = mem_ranges(NULL, 0);
    mem_range_t *r = calloc(m + 1, sizeof(*r));
    mem_ranges(r, m);
    for (int i = 0; i < 8; i++) {
        int in_big = 0, in_own = 0;
        for (size_t j = 0; j < m; j++) {
            in_big |= r[j].start <= (uintptr_t)big[i]
                      && (uintptr_t)big[i] < r[j].end;
            in_own |= r[j].start <= (uintptr_t)own[i]
                      && (uintptr_t)own[i] < r[j].end;
        }
        ck_assert(in_big);
        ck_assert_msg(!in_own, "a malloc()ed block lies in the heap ranges");
        ck_assert_uint_eq(mem_block_size(big[i]), LB(600 + i * 300));
        ck_assert_uint_eq(mem_block_size(own[i]), 0);
    }
    free(r);
    for (int i = 0; i < 8; i++) {
        mem_free(big[i]);
        free(own[i]);
    }
    ck_assert_uint_eq(mem_ranges(NULL, 0), 0);       /* chunk trimmed */
}
END_TEST

/* Large blocks coalesce when freed: a block freed between two free ones
 * joins them, and the space serves a request of their joint size. */
START_TEST(mem_large_blocks_coalesce)
{
    void *a = mem_alloc(10000), *b = mem_alloc(10000), *c = mem_alloc(10000);
    void *keep = mem_alloc(10000);
    mem_free(a);
    mem_free(c);
    mem_free(b);
    void *d = mem_alloc(30000);         /* fits where a, b, c were */
    ck_assert_ptr_eq(d, a);
    mem_free(d);
    mem_free(keep);
    ck_assert_uint_eq(stats().large_in_use, 0);
}
END_TEST

/* ---- mem_ranges ------------------------------------------------------- */

static void
check_ranges_cover(void **v, const size_t *sz, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    long count = mem_ranges(NULL, 0);
    ck_assert_int_ge(count, 1);
    size_t m = (size_t)count;
    mem_range_t *r = calloc(m + 1, sizeof(*r));
    r[m].start = r[m].end = 0xDEAD;                   /* sentinel */
    ck_assert_uint_eq(mem_ranges(r, m), m);
    ck_assert_uint_eq(r[m].start, 0xDEAD);
    for (size_t i = 0; i < m; i++) {
        ck_assert_uint_eq(r[i].start % pg, 0);
        ck_assert_uint_eq(r[i].end % pg, 0);
        ck_assert_uint_lt(r[i].start, r[i].end);
        if (i > 0)                  /* sorted, and touching ones merged */
            ck_assert_uint_lt(r[i - 1].end, r[i].start);
    }
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)v[i], b = a + sz[i];
        size_t j = 0;
        while (j < m && !(r[j].start <= a && b <= r[j].end))
            j++;
        ck_assert_msg(j < m, "block %zu [%#lx, %#lx) is in no range", i,
                      (unsigned long)a, (unsigned long)b);
    }
    /* Whole arenas are listed. */
    for (size_t i = 0; i < n; i++) {
        if (!mem_in_arena(v[i]))
            continue;
        uintptr_t a = ARENA_OF(v[i]), b = a + MEM_ARENA_SIZE;
        size_t j = 0;
        while (j < m && !(r[j].start <= a && b <= r[j].end))
            j++;
        ck_assert(j < m);
    }
    /* A short buffer gets the first ranges and the full count. */
    if (m >= 2) {
        mem_range_t one[2] = { { 0, 0 }, { 0xBEEF, 0xBEEF } };
        ck_assert_uint_eq(mem_ranges(one, 1), m);
        ck_assert_uint_eq(one[0].start, r[0].start);
        ck_assert_uint_eq(one[0].end, r[0].end);
        ck_assert_uint_eq(one[1].start, 0xBEEF);
    }
    free(r);
}

START_TEST(mem_ranges_cover_live_blocks)
{
    ck_assert_uint_eq(mem_ranges(NULL, 0), 0);
    enum { N = 6000 };
    static void *v[N];
    static size_t sz[N];
    rng_state = 12345;
    size_t n = 0;
    /* Enough small blocks for two or three arenas, and large ones from
     * just over MEM_SMALL_MAX to past the mmap threshold. */
    for (; n < N - 40; n++) {
        sz[n] = 1 + rng() % MEM_SMALL_MAX;
        v[n] = mem_alloc(sz[n]);
        ck_assert_ptr_nonnull(v[n]);
    }
    for (; n < N; n++) {
        sz[n] = MEM_SMALL_MAX + 1 + rng() % (n % 4 == 0 ? 400000 : 20000);
        v[n] = mem_alloc(sz[n]);
        ck_assert_ptr_nonnull(v[n]);
    }
    ck_assert_uint_ge(stats().arenas_live, 2);
    check_ranges_cover(v, sz, n);
    static mem_range_t all[N];
    long m = mem_ranges(all, N);
    ck_assert_int_ge(m, 1);
    ck_assert_uint_le(m, stats().arenas_live + stats().large_in_use);

    /* Drop every large block: only arenas are left. */
    for (size_t i = N - 40; i < N; i++)
        mem_free(v[i]);
    check_ranges_cover(v, sz, N - 40);
    m = mem_ranges(all, N);
    size_t total = 0;
    for (long i = 0; i < m; i++) {
        ck_assert_uint_eq(all[i].start % MEM_ARENA_SIZE, 0);
        ck_assert_uint_eq(all[i].end % MEM_ARENA_SIZE, 0);
        total += all[i].end - all[i].start;
    }
    ck_assert_uint_eq(total, stats().arenas_live * MEM_ARENA_SIZE);
    for (size_t i = 0; i < N - 40; i++)
        mem_free(v[i]);
    ck_assert_uint_eq(mem_ranges(all, N), 1);         /* the kept arena */
    mem_fini();
    ck_assert_int_eq(mem_init(), 0);
    ck_assert_uint_eq(mem_ranges(all, N), 0);
}
END_TEST

/* Out of memory for its working list, mem_ranges() says so: a heap with
 * pages must never look like one without (heap_pages 0, all shared). */
START_TEST(mem_ranges_out_of_memory)
{
    mem_range_t r[4];
    void *small = mem_alloc(64), *large = mem_alloc(100000);
    long n;

    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(large);
    n = mem_ranges(r, 4);
    ck_assert_int_ge(n, 1);             /* 2, unless the two touch */
    ck_assert_int_le(n, 2);
    mem_fail_after(1);
    ck_assert_int_eq(mem_ranges(r, 4), -1);
    ck_assert_int_eq(mem_ranges(NULL, 0), n);     /* one failure only */
    mem_fail_after(2);                  /* it counts as one allocation */
    ck_assert_int_eq(mem_ranges(r, 4), n);
    ck_assert_ptr_null(mem_alloc(64));
    mem_free(small);
    mem_free(large);
}
END_TEST

/* ---- mem_realloc ------------------------------------------------------ */

static void
fill(void *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)p)[i] = (uint8_t)(seed + i * 7);
}

static int
filled(const void *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (((const uint8_t *)p)[i] != (uint8_t)(seed + i * 7))
            return 0;
    return 1;
}

START_TEST(mem_realloc_same_class)
{
    void *p = mem_alloc(20);                          /* class of 32 */
    fill(p, 20, 3);
    ck_assert_ptr_eq(mem_realloc(p, 32), p);
    ck_assert_ptr_eq(mem_realloc(p, 17), p);
    ck_assert_ptr_eq(mem_realloc(p, 30), p);
    ck_assert(filled(p, 20, 3));
    void *q = mem_alloc(MEM_SMALL_MAX);
    ck_assert_ptr_eq(mem_realloc(q, MEM_SMALL_MAX - 15), q);
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.allocs, 2);
    ck_assert_uint_eq(st.blocks_in_use, 2);
    mem_free(p);
    mem_free(q);
}
END_TEST

START_TEST(mem_realloc_other_class_copies)
{
    void *p = mem_alloc(100);
    fill(p, 100, 9);
    void *q = mem_realloc(p, 300);                    /* grows */
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_ne(q, p);
    ck_assert(filled(q, 100, 9));
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.class_blocks[MEM_SIZE2CLASS(100)], 0);
    ck_assert_uint_eq(st.class_blocks[MEM_SIZE2CLASS(300)], 1);
    ck_assert_uint_eq(st.blocks_in_use, 1);
    fill(q, 300, 11);
    void *r = mem_realloc(q, 40);                     /* shrinks */
    ck_assert_ptr_ne(r, q);
    ck_assert(filled(r, 40, 11));
    ck_assert_uint_eq(stats().class_blocks[MEM_SIZE2CLASS(40)], 1);
    ck_assert_uint_eq(stats().blocks_in_use, 1);
    mem_free(r);
}
END_TEST

START_TEST(mem_realloc_small_large)
{
    void *p = mem_alloc(200);
    fill(p, 200, 1);
    void *q = mem_realloc(p, 5000);                   /* small -> large */
    ck_assert_ptr_nonnull(q);
    ck_assert(!mem_in_arena(q));
    ck_assert(filled(q, 200, 1));
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.large_in_use, 1);
    ck_assert_uint_eq(st.large_bytes, LB(5000));

    fill(q, 5000, 2);
    void *r = mem_realloc(q, 300000);                 /* large -> large */
    ck_assert_ptr_nonnull(r);
    ck_assert(filled(r, 5000, 2));
    st = stats();
    ck_assert_uint_eq(st.large_in_use, 1);
    ck_assert_uint_eq(st.large_bytes, LB(300000));
    void *other = mem_alloc(1000);                    /* list neighbours */
    fill(r, 300000, 3);
    void *s = mem_realloc(r, 700);                    /* large -> large */
    ck_assert(filled(s, 700, 3));
    ck_assert_uint_eq(stats().large_bytes, LB(1000) + LB(700));

    void *t = mem_realloc(s, MEM_SMALL_MAX);          /* large -> small */
    ck_assert_ptr_nonnull(t);
    ck_assert(mem_in_arena(t));
    ck_assert(filled(t, MEM_SMALL_MAX, 3));
    st = stats();
    ck_assert_uint_eq(st.large_in_use, 1);
    ck_assert_uint_eq(st.large_bytes, LB(1000));
    ck_assert_uint_eq(st.blocks_in_use, 1);
    mem_free(other);
    mem_free(t);
    st = stats();
    ck_assert_uint_eq(st.large_in_use, 0);
    ck_assert_uint_eq(st.large_bytes, 0);
    ck_assert_uint_eq(st.blocks_in_use, 0);
}
END_TEST

/* ---- mem_fail_after --------------------------------------------------- */

START_TEST(mem_fail_after_nth)
{
    for (long n = 1; n <= 12; n++) {
        void *v[20];
        mem_fail_after(n);
        for (long i = 1; i <= 20; i++) {
            /* Alternate small and large: both count. */
            v[i - 1] = mem_alloc(i % 3 == 0 ? 4000 : (size_t)i * 8);
            if (i == n)
                ck_assert_msg(v[i - 1] == NULL, "alloc %ld of %ld", i, n);
            else
                ck_assert_msg(v[i - 1] != NULL, "alloc %ld of %ld", i, n);
        }
        mem_stats_t st = stats();
        ck_assert_uint_eq(st.blocks_in_use + st.large_in_use, 19);
        for (int i = 0; i < 20; i++)
            mem_free(v[i]);
        st = stats();
        ck_assert_uint_eq(st.blocks_in_use + st.large_in_use, 0);
    }
    /* n == 0 disarms a pending failure. */
    mem_fail_after(2);
    mem_fail_after(0);
    for (int i = 0; i < 10; i++) {
        void *p = mem_alloc(64);
        ck_assert_ptr_nonnull(p);
        mem_free(p);
    }
}
END_TEST

START_TEST(mem_fail_after_realloc_keeps_block)
{
    void *p = mem_alloc(40);
    fill(p, 40, 5);
    mem_fail_after(1);
    ck_assert_ptr_null(mem_realloc(p, 400));          /* needs a move */
    ck_assert(filled(p, 40, 5));
    ck_assert_uint_eq(stats().blocks_in_use, 1);
    void *q = mem_realloc(p, 400);                    /* works again */
    ck_assert_ptr_nonnull(q);
    ck_assert(filled(q, 40, 5));

    void *big = mem_alloc(10000);
    fill(big, 10000, 6);
    mem_fail_after(1);
    ck_assert_ptr_null(mem_realloc(big, 20000));      /* large -> large */
    ck_assert(filled(big, 10000, 6));
    ck_assert_uint_eq(stats().large_bytes, LB(10000));
    mem_fail_after(1);
    ck_assert_ptr_null(mem_realloc(big, 100));        /* large -> small */
    ck_assert(filled(big, 10000, 6));
    mem_fail_after(1);
    ck_assert_ptr_null(mem_realloc(q, 1000));         /* small -> large */
    ck_assert(filled(q, 40, 5));
    mem_stats_t st = stats();
    ck_assert_uint_eq(st.blocks_in_use, 1);
    ck_assert_uint_eq(st.large_in_use, 1);
    mem_free(big);
    mem_free(q);
}
END_TEST

/* ---- randomized run against a model ----------------------------------- */

#define STRESS_OPS   200000
#define STRESS_SLOTS 16000

typedef struct {
    uint8_t *p;
    size_t size;
    uint8_t pattern;
} live_t;

static int
verify(const live_t *b)
{
    for (size_t i = 0; i < b->size; i++)
        if (b->p[i] != (uint8_t)(b->pattern ^ (i * 131)))
            return 0;
    return 1;
}

static void
paint(live_t *b, size_t from)
{
    for (size_t i = from; i < b->size; i++)
        b->p[i] = (uint8_t)(b->pattern ^ (i * 131));
}

static void
model_counts(const live_t *live, size_t n, size_t *small, size_t *large)
{
    *small = *large = 0;
    for (size_t i = 0; i < n; i++) {
        if (live[i].size <= MEM_SMALL_MAX)
            (*small)++;
        else
            (*large)++;
    }
}

/* Mostly object-sized requests, some up to 2048 (large ones). */
static size_t
random_size(void)
{
    uint64_t r = rng();
    if (r % 8 < 6)
        return 1 + (r >> 8) % 128;
    return 1 + (r >> 8) % 2048;
}

START_TEST(mem_stress_random)
{
    static live_t live[STRESS_SLOTS];
    size_t nlive = 0, small, large, peak_arenas = 0;
    rng_state = 0xC0FFEE1234567ULL;

    for (long op = 0; op < STRESS_OPS; op++) {
        /* Phases of 25000 operations: growth (70% alloc, 15% free, 15%
         * realloc) then a drain (10/80/10) that nearly empties the model,
         * so arenas are mapped, released and mapped again. */
        int growing = (op / 25000) % 2 == 0;
        unsigned r = (unsigned)(rng() % 100);
        if (nlive == 0 || (nlive < STRESS_SLOTS && r < (growing ? 70u
                                                                : 10u))) {
            live_t *b = &live[nlive];
            b->size = random_size();
            b->pattern = (uint8_t)rng();
            b->p = mem_alloc(b->size);
            ck_assert_ptr_nonnull(b->p);
            ck_assert_uint_eq((uintptr_t)b->p % MEM_ALIGNMENT, 0);
            ck_assert_int_eq(mem_in_arena(b->p), b->size <= MEM_SMALL_MAX);
            paint(b, 0);
            nlive++;
        } else if (r < (growing ? 85u : 90u)) {
            size_t i = (size_t)(rng() % nlive);
            ck_assert_msg(verify(&live[i]), "op %ld: block %zu corrupted",
                          op, i);
            mem_free(live[i].p);
            live[i] = live[--nlive];
        } else {
            size_t i = (size_t)(rng() % nlive);
            live_t *b = &live[i];
            ck_assert_msg(verify(b), "op %ld: block %zu corrupted", op, i);
            size_t old = b->size, n = random_size();
            uint8_t *q = mem_realloc(b->p, n);
            ck_assert_ptr_nonnull(q);
            ck_assert_uint_eq((uintptr_t)q % MEM_ALIGNMENT, 0);
            b->p = q;
            b->size = n < old ? n : old;
            ck_assert_msg(verify(b), "op %ld: realloc lost contents", op);
            b->size = n;
            paint(b, old < n ? old : n);
        }
        if (op % 5000 == 0) {
            mem_stats_t st = stats();
            model_counts(live, nlive, &small, &large);
            ck_assert_uint_eq(st.blocks_in_use, small);
            ck_assert_uint_eq(st.large_in_use, large);
            if (st.arenas_live > peak_arenas)
                peak_arenas = st.arenas_live;
        }
    }
    mem_stats_t st = stats();
    model_counts(live, nlive, &small, &large);
    ck_assert_uint_eq(st.blocks_in_use, small);
    ck_assert_uint_eq(st.large_in_use, large);
    ck_assert_uint_ge(peak_arenas, 2);
    ck_assert_uint_gt(st.arenas_released, 0);

    for (size_t i = 0; i < nlive; i++) {
        ck_assert(verify(&live[i]));
        mem_free(live[i].p);
    }
    st = stats();
    ck_assert_uint_eq(st.blocks_in_use, 0);
    ck_assert_uint_eq(st.bytes_in_use, 0);
    ck_assert_uint_eq(st.large_in_use, 0);
    ck_assert_uint_eq(st.large_bytes, 0);
    ck_assert_uint_eq(st.pools_used + st.pools_full, 0);
    ck_assert_uint_eq(st.arenas_live, 1);
    ck_assert_uint_eq(st.allocs - st.frees, 0);
}
END_TEST

/* ---- debug fill patterns ---------------------------------------------- */

#ifdef RT_DEBUG
START_TEST(mem_debug_fill_patterns)
{
    uint8_t *a = mem_alloc(64), *keep = mem_alloc(64);
    for (size_t i = 0; i < 64; i++)
        ck_assert_uint_eq(a[i], 0xAA);
    memset(a, 0, 64);
    mem_free(a);        /* the pool stays used: a's memory stays mapped */
    /* The first word holds the free-list link; the rest is 0x55. */
    for (size_t i = sizeof(void *); i < 64; i++)
        ck_assert_uint_eq(a[i], 0x55);
    a = mem_alloc(64);
    for (size_t i = 0; i < 64; i++)
        ck_assert_uint_eq(a[i], 0xAA);
    mem_free(a);
    mem_free(keep);
}
END_TEST
#endif

int
main(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("blocks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);              /* the machine is shared */
    tcase_add_test(tc, mem_size_classes);
    tcase_add_test(tc, mem_header_same_for_every_class);
    tcase_add_test(tc, mem_alignment);
    tcase_add_test(tc, mem_zero_size);
    tcase_add_test(tc, mem_free_null_ignored);
    tcase_add_test(tc, mem_stats_counts_calls);
    tcase_add_test(tc, mem_reuse_lifo);
    tcase_add_test(tc, mem_lazy_carving);
    tcase_add_test(tc, mem_realloc_same_class);
    tcase_add_test(tc, mem_realloc_other_class_copies);
    tcase_add_test(tc, mem_realloc_small_large);
    tcase_add_test(tc, mem_fail_after_nth);
    tcase_add_test(tc, mem_fail_after_realloc_keeps_block);
    tcase_add_test(tc, mem_large_tracked);
    tcase_add_test(tc, mem_large_blocks_not_from_malloc);
    tcase_add_test(tc, mem_large_blocks_coalesce);
#ifdef RT_DEBUG
    tcase_add_test(tc, mem_debug_fill_patterns);
#endif
    suite_add_tcase(s, tc);

    TCase *tp = tcase_create("pools");
    tcase_add_checked_fixture(tp, setup, teardown);
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, mem_pool_used_full_empty);
    tcase_add_test(tp, mem_pool_capacity_every_class);
    tcase_add_test(tp, mem_empty_pool_other_class);
    tcase_add_test(tp, mem_arena_release);
    tcase_add_test(tp, mem_arena_table_grows);
    tcase_add_test(tp, mem_usable_fullest_first);
    tcase_add_test(tp, mem_ranges_cover_live_blocks);
    tcase_add_test(tp, mem_ranges_out_of_memory);
    tcase_add_test(tp, mem_fini_releases);
    tcase_add_test(tp, mem_init_twice_fails);
    suite_add_tcase(s, tp);

    TCase *tr = tcase_create("stress");
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, mem_stress_random);
    suite_add_tcase(s, tr);

    return ts_run_suite(s);
}
