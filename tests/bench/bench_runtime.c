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
 *   inline_rc_read_copied_pct,   heap pages a forked child copies by reading
 *   split_rc_read_copied_pct     (incref + decref) every object of a heap of
 *                                NOBJS once, in % of the heap's pages, under
 *                                --refcount inline and split (the parent
 *                                called rt_before_fork) in the same run
 *   split_rc_incref_ns           the incref_decref loop on those shared
 *                                objects in the split child, alternated with
 *                                the same loop on NOBJS objects it made
 *                                (inline counts): split_rc_inline_ns, and
 *                                split_rc_incref_ratio_vs_inline
 *   split_rc_table_bytes_per_read_object  the child's table after reading
 *                                every object once, per object read
 * Prints "name: value unit", one figure per line, after a header naming
 * the build.  Every time is the best of several alternated repetitions:
 * the machine is shared, and the best time is the least disturbed one.
 * Page counts are exact (pagemap) and come from one run.
 * Measure only with the release build (see the Makefile).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"
#include "object.h"
#include "procstat.h"

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

/* NOBJS ints and strs, half each, in a random order; 0 or -1. */
static int
make_objs(rt_heap_t *h, rt_obj_t **objs)
{
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
    return 0;
}

static int
bench_refcount(void)
{
    rt_heap_t *h = rt_heap_new();
    rt_obj_t **objs = malloc(NOBJS * sizeof(*objs));
    if (h == NULL || objs == NULL)
        return -1;
    if (make_objs(h, objs) < 0)
        return -1;
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

/* ---- split refcounts ----------------------------------------------------
 * The objects of bench_refcount, in a heap of each refcount mode (one heap
 * per process: one after the other), held by a list so that the heap walk
 * of rt_before_fork reaches them.  The parent snapshots the heap's pages
 * and forks; the child reads each object once, counts what it copied, and
 * (split only) times the loop of incref_decref_ns on the shared objects
 * against the same loop on objects of its own. */

typedef struct {
    size_t copied, heap_pages;
    size_t object_pages;                /* pages holding an object's count */
    size_t entries, table_bytes;
    double best_split, best_inline;     /* ns per pass; 0: not timed */
} split_res_t;

static int
split_child(rt_heap_t *h, rt_obj_t **objs, int split, const ps_snap_t *s,
            split_res_t *r)
{
    for (size_t i = 0; i < NOBJS; i++) {
        rt_incref(objs[i]);
        BARRIER();
        rt_decref(objs[i]);
    }
    /* Now, before the objects below are made in the heap's free space. */
    if (ps_count_copied(s, 0, &r->copied) < 0)
        return -1;
    rt_overhead_t ov;
    rt_get_overhead(h, &ov);
    r->entries = ov.rc_table_entries;
    r->table_bytes = ov.rc_table_bytes;
    if (!split)
        return 0;
    rt_obj_t **own = malloc(NOBJS * sizeof(*own));
    if (own == NULL || make_objs(h, own) < 0)
        return -1;
    r->best_split = r->best_inline = 1e300;
    rc_run_check(objs);                                 /* warm up */
    rc_run_check(own);
    for (int rep = 0; rep < RC_REPS; rep++) {
        double a, b;
        if (rep % 2 == 0) {
            a = rc_run_check(objs);
            b = rc_run_check(own);
        } else {
            b = rc_run_check(own);
            a = rc_run_check(objs);
        }
        if (a < r->best_split)
            r->best_split = a;
        if (b < r->best_inline)
            r->best_inline = b;
    }
    return 0;
}

static int
cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct pages holding the refcount of one of the objects. */
static size_t
count_object_pages(rt_obj_t **objs)
{
    uintptr_t *p = malloc(NOBJS * sizeof(*p));
    uintptr_t mask = ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    size_t n = 0;
    if (p == NULL)
        return 0;
    for (size_t i = 0; i < NOBJS; i++)
        p[i] = (uintptr_t)&objs[i]->refcnt & mask;
    qsort(p, NOBJS, sizeof(*p), cmp_uptr);
    for (size_t i = 0; i < NOBJS; i++)
        n += i == 0 || p[i] != p[i - 1];
    free(p);
    return n;
}

/* One mode: 0, 1 if pagemap cannot be read here, -1 on failure. */
static int
split_run(int split, split_res_t *r)
{
    rt_opts_t o;
    rt_opts_default(&o);
    o.refcount = split ? RT_RC_SPLIT : RT_RC_INLINE;
    rt_heap_t *h = rt_heap_new_opts(&o);
    rt_obj_t **objs = malloc(NOBJS * sizeof(*objs));
    rt_obj_t *holder = h ? rt_list_new(h) : NULL;
    if (holder == NULL || objs == NULL || make_objs(h, objs) < 0)
        return -1;
    for (size_t i = 0; i < NOBJS; i++)
        if (rt_list_append(holder, objs[i]) < 0)
            return -1;
    if (split && rt_before_fork(h) < (long)NOBJS)
        return -1;
    static mem_range_t ranges[4096];
    long nr = mem_ranges(ranges, 4096);
    ps_snap_t *s = NULL;
    if (nr < 1 || nr > 4096)
        return -1;
    if (ps_snap_take(&s, 0, (const ps_range_t *)ranges, (size_t)nr) < 0)
        return 1;
    memset(r, 0, sizeof *r);
    r->heap_pages = ps_snap_pages(s);
    r->object_pages = count_object_pages(objs);
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        split_res_t c = *r;
        if (split_child(h, objs, split, s, &c) < 0
            || write(fds[1], &c, sizeof c) != sizeof c)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof *r)
        return -1;
    ps_snap_free(s);
    for (size_t i = 0; i < NOBJS; i++)
        rt_decref(objs[i]);
    free(objs);
    rt_decref(holder);
    rt_heap_free(h);
    return 0;
}

static int
bench_split(void)
{
    split_res_t in, sp;
    int a = split_run(0, &in);
    int b = a == 0 ? split_run(1, &sp) : a;
    if (a < 0 || b < 0)
        return -1;
    if (a > 0 || b > 0) {
        printf("split_rc_read_copied_pct: n/a (pagemap unreadable)\n");
        return 0;
    }
    /* The rest of the heap's pages hold the list's item array (read,
     * not written) and the heap's own objects. */
    printf("inline_rc_read_copied_pct: %.1f %% (%zu of %zu heap pages; "
           "%zu hold the objects)\n",
           100.0 * (double)in.copied / (double)in.heap_pages, in.copied,
           in.heap_pages, in.object_pages);
    printf("split_rc_read_copied_pct: %.1f %% (%zu of %zu heap pages; "
           "%zu hold the objects)\n",
           100.0 * (double)sp.copied / (double)sp.heap_pages, sp.copied,
           sp.heap_pages, sp.object_pages);
    double pairs = (double)NOBJS * RC_PASSES;
    printf("split_rc_incref_ns: %.2f ns\n", sp.best_split / pairs);
    printf("split_rc_inline_ns: %.2f ns\n", sp.best_inline / pairs);
    printf("split_rc_incref_ratio_vs_inline: %.2f\n",
           sp.best_split / sp.best_inline);
    printf("split_rc_table_entries: %zu\n", sp.entries);
    printf("split_rc_table_bytes_per_read_object: %.1f bytes\n",
           (double)sp.table_bytes / (double)NOBJS);
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
    fflush(stdout);
    if (bench_split() < 0) {
        fprintf(stderr, "bench_runtime: split refcount benchmark failed\n");
        return 1;
    }
    return 0;
}
