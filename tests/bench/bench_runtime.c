/*
 * bench_runtime.c -- micro-benchmarks of the runtime's hot paths, each
 * measured in the same run as its baseline:
 *   alloc_free_ratio_vs_malloc   mem_alloc/mem_free vs glibc malloc/free on
 *                                one precomputed object-size mix and
 *                                alloc/free sequence (above 1 = faster)
 *   incref_decref_ns             one rt_incref + rt_decref pair on objects
 *                                visited in random order
 *   immortal_check_overhead_pct  that pair vs one that skips the PEP 683
 *                                immortality test
 * Prints "name: value unit", one figure per line, after a header naming
 * the build.  Every figure is the best of several alternated repetitions:
 * the machine is shared, and the best time is the least disturbed one.
 * Measure only with the release build (see the Makefile).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mem.h"
#include "object.h"

#define BARRIER()   __asm__ volatile("" ::: "memory")

/* xorshift64*: the same sequence on every run and for both sides. */
static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
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

/* ---- alloc + free ----------------------------------------------------
 * A window of WINDOW live blocks (the long-lived objects of a request
 * handler); each step frees a random one and allocates its replacement.
 * Every BURST_EVERY steps on average comes a burst of temporaries,
 * allocated together and freed in reverse order.  Each new block gets its
 * first word written, as an object header would be. */

#define WINDOW       8192
#define STEPS        (1u << 18)
#define BURST_EVERY  128
#define BURST_MAX    256
#define AF_REPS      21      /* short runs (~0.1 s): on a busy machine
                                   the best of many finds a quiet one */

/* Request sizes of a CPython-like heap: mostly 32..64-byte objects
 * (ints, floats, small tuples, short strs), a tail of dicts' and lists'
 * storage up to MEM_SMALL_MAX.  Weights add up to 100. */
static const struct { unsigned size, weight; } size_mix[] = {
    { 16, 6 }, { 32, 22 }, { 48, 20 }, { 64, 16 }, { 80, 8 }, { 96, 6 },
    { 112, 4 }, { 128, 4 }, { 160, 3 }, { 192, 3 }, { 256, 3 },
    { 320, 2 }, { 384, 1 }, { 448, 1 }, { 512, 1 },
};

typedef struct {
    uint32_t slot;              /* the window slot freed and refilled */
    uint16_t size;              /* its new request size */
    uint16_t burst;             /* then a burst of this many, or 0 */
} step_t;

static step_t *steps;
static uint16_t *init_sizes;    /* the window's first fill */
static uint16_t *burst_sizes;   /* a ring read by every burst */
#define BURST_RING   (1u << 16)
static size_t af_pairs;         /* alloc + free pairs in one run */

static uint16_t
random_size(void)
{
    unsigned w = (unsigned)(rng() % 100), i = 0;
    while (w >= size_mix[i].weight) {
        w -= size_mix[i].weight;
        i++;
    }
    /* Anywhere in the class, since requests are not all class-sized,
     * but never below an object header (refcount + type: 16 bytes). */
    unsigned hi = size_mix[i].size;
    if (hi <= 16)
        return (uint16_t)hi;
    return (uint16_t)(hi - (unsigned)(rng() % MEM_ALIGNMENT));
}

static int
af_prepare(void)
{
    steps = malloc(STEPS * sizeof(*steps));
    init_sizes = malloc(WINDOW * sizeof(*init_sizes));
    burst_sizes = malloc(BURST_RING * sizeof(*burst_sizes));
    if (!steps || !init_sizes || !burst_sizes)
        return -1;
    for (size_t i = 0; i < WINDOW; i++)
        init_sizes[i] = random_size();
    for (size_t i = 0; i < BURST_RING; i++)
        burst_sizes[i] = random_size();
    af_pairs = 0;
    for (size_t i = 0; i < STEPS; i++) {
        steps[i].slot = (uint32_t)(rng() % WINDOW);
        steps[i].size = random_size();
        steps[i].burst = rng() % BURST_EVERY == 0
                         ? (uint16_t)(1 + rng() % BURST_MAX) : 0;
        af_pairs += 1 + steps[i].burst;
    }
    return 0;
}

/* One run over the whole sequence; returns the timed part in ns.  A macro,
 * so that each side calls its allocator directly, as a program would. */
#define DEFINE_AF_RUN(name, ALLOC, FREE)                                    \
static double                                                               \
name(void)                                                                  \
{                                                                           \
    static void *win[WINDOW], *burst[BURST_MAX];                            \
    size_t bpos = 0;                                                        \
    for (size_t i = 0; i < WINDOW; i++) {                                   \
        win[i] = ALLOC(init_sizes[i]);                                      \
        *(volatile uint64_t *)win[i] = i;                                   \
    }                                                                       \
    double t0 = (double)clk_now_ns();                                       \
    for (size_t i = 0; i < STEPS; i++) {                                    \
        const step_t *s = &steps[i];                                        \
        FREE(win[s->slot]);                                                 \
        void *p = ALLOC(s->size);                                           \
        *(uint64_t *)p = i;                                                 \
        win[s->slot] = p;                                                   \
        if (s->burst) {                                                     \
            for (unsigned k = 0; k < s->burst; k++) {                       \
                burst[k] = ALLOC(burst_sizes[bpos++ & (BURST_RING - 1)]);  \
                *(uint64_t *)burst[k] = k;                                  \
            }                                                               \
            BARRIER();                                                      \
            for (unsigned k = s->burst; k-- > 0;)                           \
                FREE(burst[k]);                                             \
        }                                                                   \
    }                                                                       \
    BARRIER();                                                              \
    double t = (double)clk_now_ns() - t0;                                   \
    for (size_t i = 0; i < WINDOW; i++)                                     \
        FREE(win[i]);                                                       \
    return t;                                                               \
}

DEFINE_AF_RUN(af_run_pymalloc, mem_alloc, mem_free)
DEFINE_AF_RUN(af_run_malloc, malloc, free)

static int
bench_alloc_free(void)
{
    if (af_prepare() < 0 || mem_init() < 0)
        return -1;
    double best_py = 1e300, best_libc = 1e300;
    af_run_pymalloc();                          /* warm both up */
    af_run_malloc();
    for (int r = 0; r < AF_REPS; r++) {         /* alternate the order */
        double a, b;
        if (r % 2 == 0) {
            a = af_run_pymalloc();
            b = af_run_malloc();
        } else {
            b = af_run_malloc();
            a = af_run_pymalloc();
        }
        if (a < best_py)
            best_py = a;
        if (b < best_libc)
            best_libc = b;
    }
    mem_stats_t st;
    mem_get_stats(&st);
    mem_fini();
    if (st.blocks_in_use != 0)
        return -1;
    double mops_py = (double)af_pairs / best_py * 1e3;
    double mops_libc = (double)af_pairs / best_libc * 1e3;
    printf("alloc_free_ratio_vs_malloc: %.2f\n", mops_py / mops_libc);
    printf("alloc_free_mops_pymalloc: %.1f Mops/s\n", mops_py);
    printf("alloc_free_mops_malloc: %.1f Mops/s\n", mops_libc);
    free(steps);
    free(init_sizes);
    free(burst_sizes);
    return 0;
}

/* ---- incref + decref ---------------------------------------------------
 * NOBJS objects (ints and strs, half each) visited in a random order, so
 * each pair touches a different cache line, as a walk over a real heap
 * does.  Both variants run the same loop; a compiler barrier between the
 * incref and the decref keeps the increment from being folded away (in a
 * program, work happens in between), and the refcount is written back
 * every time, which is the copy-on-write cost this project is about. */

#define NOBJS        (1u << 20)
#define RC_PASSES    1
#define RC_REPS      41      /* ~25 ms each, alternated */

static inline void
nocheck_incref(rt_obj_t *o)
{
    o->refcnt++;
}

static inline void
nocheck_decref(rt_obj_t *o)
{
    if (--o->refcnt == 0)
        rt_dealloc(o);
}

static double
rc_run_check(rt_obj_t **objs)
{
    double t0 = (double)clk_now_ns();
    for (int pass = 0; pass < RC_PASSES; pass++)
        for (size_t i = 0; i < NOBJS; i++) {
            rt_obj_t *o = objs[i];
            rt_incref(o);
            BARRIER();
            rt_decref(o);
        }
    BARRIER();
    return (double)clk_now_ns() - t0;
}

static double
rc_run_nocheck(rt_obj_t **objs)
{
    double t0 = (double)clk_now_ns();
    for (int pass = 0; pass < RC_PASSES; pass++)
        for (size_t i = 0; i < NOBJS; i++) {
            rt_obj_t *o = objs[i];
            nocheck_incref(o);
            BARRIER();
            nocheck_decref(o);
        }
    BARRIER();
    return (double)clk_now_ns() - t0;
}

static int
bench_refcount(void)
{
    rt_heap_t *h = rt_heap_new();
    rt_obj_t **objs = malloc(NOBJS * sizeof(*objs));
    if (h == NULL || objs == NULL)
        return -1;
    char buf[32];
    for (size_t i = 0; i < NOBJS; i++) {
        if (i % 2 == 0) {
            objs[i] = rt_int_new(h, 1000 + (int64_t)i);   /* not cached */
        } else {
            int n = snprintf(buf, sizeof buf, "key_%zu", i);
            objs[i] = rt_str_new(h, buf, (size_t)n);
        }
        if (objs[i] == NULL)
            return -1;
    }
    for (size_t i = NOBJS; i > 1; i--) {                /* random order */
        size_t j = (size_t)(rng() % i);
        rt_obj_t *t = objs[i - 1];
        objs[i - 1] = objs[j];
        objs[j] = t;
    }
    double best_check = 1e300, best_nocheck = 1e300;
    rc_run_check(objs);                                 /* warm up */
    rc_run_nocheck(objs);
    for (int r = 0; r < RC_REPS; r++) {
        double a, b;
        if (r % 2 == 0) {
            a = rc_run_check(objs);
            b = rc_run_nocheck(objs);
        } else {
            b = rc_run_nocheck(objs);
            a = rc_run_check(objs);
        }
        if (a < best_check)
            best_check = a;
        if (b < best_nocheck)
            best_nocheck = b;
    }
    /* Every refcount must be back at 1. */
    for (size_t i = 0; i < NOBJS; i++)
        if (objs[i]->refcnt != 1)
            return -1;
    double pairs = (double)NOBJS * RC_PASSES;
    printf("incref_decref_ns: %.2f ns\n", best_check / pairs);
    printf("incref_decref_nocheck_ns: %.2f ns\n", best_nocheck / pairs);
    printf("immortal_check_overhead_pct: %.1f %%\n",
           100.0 * (best_check - best_nocheck) / best_nocheck);
    for (size_t i = 0; i < NOBJS; i++)
        rt_decref(objs[i]);
    free(objs);
    rt_heap_free(h);
    return 0;
}

int
main(void)
{
    const char *build =
#if defined(__SANITIZE_ADDRESS__)
        "asan (do not use these figures)";
#elif defined(RT_DEBUG)
        "debug (do not use these figures)";
#elif defined(__OPTIMIZE__)
        "release";
#else
        "unoptimized (do not use these figures)";
#endif
    printf("# bench_runtime: %s build, arena %zu KiB, pool %zu KiB, "
           "%zu pools/arena, small max %d; best of %d (alloc) / %d (rc)\n",
           build, MEM_ARENA_SIZE >> 10, MEM_POOL_SIZE >> 10,
           (size_t)MEM_POOLS_PER_ARENA, MEM_SMALL_MAX, AF_REPS, RC_REPS);
    fflush(stdout);
    if (bench_alloc_free() < 0) {
        fprintf(stderr, "bench_runtime: alloc/free benchmark failed\n");
        return 1;
    }
    fflush(stdout);
    if (bench_refcount() < 0) {
        fprintf(stderr, "bench_runtime: refcount benchmark failed\n");
        return 1;
    }
    return 0;
}
