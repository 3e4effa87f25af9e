/*
 * bench_gc.c -- what a full collection and the two ways out cost on a
 * million-container heap.  Prints `name: value unit` lines (release build
 * only: sanitizers change every figure):
 *   gc_full_ms_1m            gc_collect(2) over the heap below, best of 3.
 *   gc_full_ratio_vs_cpython that time / CPython's gc.collect() on the same
 *                            heap built by tests/bench/cpython_gc_heap.py
 *                            (run here, first, through popen; its own lines,
 *                            cpython_*, are echoed).  n/a without python3.
 *   skip_exit_ms             a child forked from the master holding the heap
 *                            decides to exit and calls rt_skip_exit(0): time
 *                            from its decision (CLOCK_MONOTONIC, written to a
 *                            shared page) until the parent's waitpid()
 *                            returns; median of 3.
 *   finalize_exit_ms         the same with rt_finalize() before _exit(0).
 *   finalize_forked_ms_1m,   rt_teardown_t of that child's rt_finalize(): a
 *   finalize_forked_minflt_1m  worker's finalization, every page it writes
 *                            a copy-on-write fault; median of 3.
 *   finalize_ms_1m,          rt_finalize() in the process that built the
 *   finalize_minflt_1m       heap, never forked (its pages are its own, so
 *                            it faults only for what it allocates).
 * Context lines: build_ms_1m, gc_tracked_1m (objects in the generations),
 * gc_collected_1m (what the collection freed: 0 by design),
 * finalize_deallocated_1m (containers and atoms).
 *
 * The heap, the same object for object as cpython_gc_heap.py's (read its
 * docstring): 100000 units of 10 tracked containers (a User instance and
 * its attribute dict, a Profile instance and its dict, two dicts of str
 * with a list value each, four lists), 1000 chunk lists of 100 units and a
 * registry list, held from C (the script's local variable) and from module
 * "app"'s globals; 1001006 tracked objects with the module, its dict,
 * sys.modules and the two classes (CPython: 1001003, its classes and
 * sys.modules being frozen).  1 unit in 8 closes a cycle (a -> a.__dict__
 * -> b -> b.__dict__ -> a): 50000 objects, 5%.  All are reachable, so a
 * collection visits every object and frees none: it measures the
 * traversal, which is what a worker's full collection costs on the
 * master's heap.  The finalizations drop the C reference first, so the
 * module roots hold the heap, as in a worker.
 *
 * The collector layouts (--gc-layout, issue 13), each on the same heap
 * built afresh:
 *   <layout>_gc_full_copied_pct   heap pages (the objects' pages: the
 *                            allocator's arenas and chunks) a full
 *                            collection in a forked child copies, in % of
 *                            the heap's pages (pagemap, exact);
 *   <layout>_gc_full_side_copied_pages  side-table pages it copies (the
 *                            collector's own mappings, outside the heap);
 *   <layout>_gc_full_ms_1m,  the collection's pause in the building
 *   *_gc_full_ratio_vs_inline  process, best of 3, and its ratio to
 *                            inline's measured in the same run;
 *   <layout>_bytes_per_object  the permanent memory the layout costs per
 *                            GC-able object: the bytes in front of each
 *                            object plus the side memory's resident pages,
 *                            over the GC-able objects (inline: 16);
 *   <layout>_heap_pages      the heap's pages (no gc head in the objects
 *                            makes the heap smaller under side and bitmap).
 *
 * Builds the heap five times (the first never forked, so its finalization
 * pays no copy-on-write).  Run from the repository root (for the script);
 * takes about 20 s.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "gc.h"
#include "mem.h"
#include "procstat.h"

#define N_UNITS     100000
#define CHUNK       100
#define CYCLE_EVERY 8
#define RUNS        3
#define SCRIPT      "tests/bench/cpython_gc_heap.py"

static void
die(const char *what)
{
    fprintf(stderr, "bench_gc: %s\n", what);
    exit(1);
}

static rt_obj_t *
need(rt_obj_t *o)
{
    if (o == NULL)
        die("out of memory building the heap");
    return o;
}

static void
ok(int r)
{
    if (r < 0)
        die("a container operation failed");
}

/* ---- the heap ----------------------------------------------------------- */

enum {
    K_ID, K_NAME, K_EMAIL, K_ACTIVE, K_TAGS, K_META, K_PEER, K_CREATED,
    K_SOURCE, K_LOCALE, K_CHILDREN, K_TITLE, K_SCORE, K_SCORES, K_HEADERS,
    K_CTYPE, K_XID, K_VARY, K_PARENT, NKEYS
};
static const char *const key_text[NKEYS] = {
    "id", "name", "email", "active", "tags", "meta", "peer", "created",
    "source", "locale", "children", "title", "score", "scores", "headers",
    "content-type", "x-id", "vary", "parent"
};

enum { S_WEB, S_EN_US, S_TEXT_HTML, S_ACCEPT, S_COOKIE, NSHARED };
static const char *const shared_text[NSHARED] = {
    "web", "en_US", "text/html", "accept", "cookie"
};
static const char *const tag_text[5] = {
    "admin", "staff", "guest", "beta", "ops"
};

typedef struct {
    rt_heap_t *h;
    rt_obj_t *key[NKEYS];       /* interned, as identifiers are */
    rt_obj_t *shared[NSHARED];  /* string constants: one object each */
    rt_obj_t *tag[5];
    rt_obj_t *one_and_half;     /* the float constant 1.5 */
    rt_obj_t *user, *profile;   /* the classes */
} build_t;

/* d[key] = v, v a new reference (dropped here). */
static void
set_new(rt_obj_t *d, rt_obj_t *key, rt_obj_t *v)
{
    ok(rt_dict_set(d, key, need(v)));
    rt_decref(v);
}

static rt_obj_t *
fmt_str(rt_heap_t *h, const char *fmt, long i)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), fmt, i);
    return need(rt_str_new(h, buf, (size_t)n));
}

static rt_obj_t *
list_of(build_t *b, int n, rt_obj_t *const *items)
{
    rt_obj_t *l = need(rt_list_new(b->h));
    for (int i = 0; i < n; i++)
        ok(rt_list_append_steal(l, items[i]));
    return l;
}

static rt_obj_t *
shared(rt_obj_t *o)
{
    rt_incref(o);
    return o;
}

/* One unit, in the script's order; returns a (new reference). */
static rt_obj_t *
build_unit(build_t *b, long i)
{
    rt_heap_t *h = b->h;
    rt_obj_t **k = b->key;
    rt_obj_t *a = need(rt_instance_new(h, b->user));
    rt_obj_t *ad = rt_instance_dict(a);
    set_new(ad, k[K_ID], rt_int_new(h, 100000 + i));
    set_new(ad, k[K_NAME], fmt_str(h, "user-%ld", i));
    set_new(ad, k[K_EMAIL], fmt_str(h, "user%ld@example.com", i));
    set_new(ad, k[K_ACTIVE], shared(rt_true(h)));
    rt_obj_t *tags[3] = { shared(b->tag[i % 5]), shared(b->tag[(i + 1) % 5]),
                          shared(b->tag[(i + 2) % 5]) };
    set_new(ad, k[K_TAGS], list_of(b, 3, tags));
    rt_obj_t *meta = need(rt_dict_new(h));
    set_new(meta, k[K_CREATED], fmt_str(h, "2024-01-%02ld", i % 28 + 1));
    set_new(meta, k[K_SOURCE], shared(b->shared[S_WEB]));
    set_new(meta, k[K_LOCALE], shared(b->shared[S_EN_US]));
    rt_obj_t *kids[4] = { need(rt_int_new(h, i % 7)),
                          need(rt_int_new(h, i % 11)),
                          need(rt_int_new(h, i % 13)),
                          need(rt_int_new(h, i % 17)) };
    set_new(meta, k[K_CHILDREN], list_of(b, 4, kids));
    set_new(ad, k[K_META], meta);

    rt_obj_t *p = need(rt_instance_new(h, b->profile));
    rt_obj_t *pd = rt_instance_dict(p);
    set_new(pd, k[K_TITLE], fmt_str(h, "title %ld", i));
    set_new(pd, k[K_SCORE], rt_float_new(h, (double)i * 0.5));
    rt_obj_t *scores[3] = { need(rt_float_new(h, (double)i * 0.25)),
                            need(rt_float_new(h, (double)i * 0.125)),
                            shared(b->one_and_half) };
    set_new(pd, k[K_SCORES], list_of(b, 3, scores));
    rt_obj_t *hdrs = need(rt_dict_new(h));
    set_new(hdrs, k[K_CTYPE], shared(b->shared[S_TEXT_HTML]));
    set_new(hdrs, k[K_XID], fmt_str(h, "req-%ld", i));
    rt_obj_t *vary[2] = { shared(b->shared[S_ACCEPT]),
                          shared(b->shared[S_COOKIE]) };
    set_new(hdrs, k[K_VARY], list_of(b, 2, vary));
    set_new(pd, k[K_HEADERS], hdrs);
    if (i % CYCLE_EVERY == 0)
        ok(rt_dict_set(pd, k[K_PARENT], a));
    set_new(ad, k[K_PEER], p);
    return a;
}

/* Build the heap, in the script's order: the registry first, then the
 * units, then module "app" whose global "registry" is it too.  Returns the
 * registry: the caller's reference stands for the script's local variable,
 * a reference from outside the heap that precedes every object in the
 * generation list.  (Had the heap hung from the module alone, the module,
 * tracked after its contents, would be scanned last by the first
 * collection, and move_unreachable() would relink the whole heap in
 * breadth-first order, scattering the list over memory: that doubles the
 * cost of every later pass, in CPython as here, and is not the shape the
 * script builds.) */
static rt_obj_t *
build_heap(build_t *b, rt_heap_t *h)
{
    memset(b, 0, sizeof(*b));
    b->h = h;
    for (int i = 0; i < NKEYS; i++)
        b->key[i] = need(rt_str_intern(h, key_text[i], strlen(key_text[i])));
    for (int i = 0; i < NSHARED; i++)
        b->shared[i] = need(rt_str_intern(h, shared_text[i],
                                          strlen(shared_text[i])));
    for (int i = 0; i < 5; i++)
        b->tag[i] = need(rt_str_intern(h, tag_text[i], strlen(tag_text[i])));
    b->one_and_half = need(rt_float_new(h, 1.5));
    b->user = need(rt_class_new(h, "User", NULL));
    b->profile = need(rt_class_new(h, "Profile", NULL));

    rt_obj_t *registry = need(rt_list_new(h));
    rt_obj_t *chunk = NULL;
    for (long i = 0; i < N_UNITS; i++) {
        if (i % CHUNK == 0) {
            chunk = need(rt_list_new(h));
            ok(rt_list_append_steal(registry, chunk));
        }
        ok(rt_list_append_steal(chunk, build_unit(b, i)));
    }
    rt_obj_t *mod = need(rt_module_new(h, "app"));
    ok(rt_dict_set_str(h, rt_module_dict(mod), "registry", registry));
    rt_decref(mod);                     /* sys.modules holds it */
    return registry;
}

static size_t
tracked(void)
{
    size_t n = 0;
    for (int g = 0; g < GC_NGENS; g++)
        n += gc_gen_size(g);
    return n;
}

/* ---- CPython's figure ------------------------------------------------- */

static int
python3_on_path(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (path == NULL)
        return 0;
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof(buf) - 16) {
            memcpy(buf, path, n);
            strcpy(buf + n, "/python3");
            if (access(buf, X_OK) == 0)
                return 1;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

/* Run the script, echo its lines; its gc.collect() ms, or a reason < 0. */
static double
cpython_gc_ms(const char **why)
{
    double ms = -1;
    char line[256];
    if (!python3_on_path()) {
        *why = "python3 not found";
        return -1;
    }
    if (access(SCRIPT, R_OK) != 0) {
        *why = SCRIPT " not found (run from the repository root)";
        return -1;
    }
    fflush(stdout);
    FILE *p = popen("python3 " SCRIPT, "r");
    if (p == NULL) {
        *why = "popen failed";
        return -1;
    }
    while (fgets(line, sizeof(line), p)) {
        fputs(line, stdout);
        sscanf(line, "cpython_gc_full_ms_1m: %lf", &ms);
    }
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0
        || ms <= 0) {
        *why = "the script failed";
        return -1;
    }
    return ms;
}

/* ---- leaving ---------------------------------------------------------- */

typedef struct {
    double t_decide;            /* the child's CLOCK_MONOTONIC, in ms */
    rt_teardown_t st;           /* its rt_finalize(), if it ran one */
} exit_report_t;

/* Fork a child off the heap; it drops the registry, as a worker's exit
 * leaves the heap to the module roots, decides to leave, and does so by
 * rt_skip_exit() or by rt_finalize() and _exit().  Returns ms from its
 * decision to our reaping. */
static double
child_exit_ms(rt_heap_t *h, rt_obj_t *registry, int finalize,
              exit_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        rt_decref(registry);            /* the module still holds it */
        rep->t_decide = clk_now_ms();
        if (finalize)
            _exit(rt_finalize(h, &rep->st) < 0 ? 1 : 0);
        rt_skip_exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid failed");
    double t1 = clk_now_ms();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("a child did not exit cleanly");
    return t1 - rep->t_decide;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static void build_heap_into(rt_heap_t *h, rt_obj_t **registry,
                            double *build_ms);

/* A fresh runtime holding the heap; *registry gets its root. */
static rt_heap_t *
heap_up(rt_obj_t **registry, double *build_ms)
{
    rt_heap_t *h = rt_heap_new();
    if (h == NULL)
        die("rt_heap_new failed");
    gc_disable();                       /* as the script: no automatic runs */
    build_heap_into(h, registry, build_ms);
    return h;
}

static void
build_heap_into(rt_heap_t *h, rt_obj_t **registry, double *build_ms)
{
    build_t b;
    double t0 = clk_now_ms();
    *registry = build_heap(&b, h);
    *build_ms = clk_now_ms() - t0;
}

/* ---- the collector layouts ------------------------------------------- */

typedef struct {
    size_t heap_pages, copied, side_pages, side_copied;
} cow_t;

static ps_snap_t *
snap_of(long (*ranges)(mem_range_t *out, size_t max))
{
    long n = ranges(NULL, 0);
    if (n < 0)
        die("out of memory listing ranges");
    mem_range_t *r = calloc((size_t)(n ? n : 1), sizeof(*r));
    if (r == NULL || ranges(r, (size_t)n) != n)
        die("ranges changed");
    ps_snap_t *s = NULL;
    if (ps_snap_take(&s, 0, (const ps_range_t *)r, (size_t)n) < 0)
        die("pagemap snapshot failed");
    free(r);
    return s;
}

/* A full collection in a child forked off the heap: pages it copies. */
static void
child_collection(cow_t *out)
{
    ps_snap_t *heap_s = snap_of(mem_ranges), *side_s = snap_of(mem_side_ranges);
    cow_t *rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rep == MAP_FAILED)
        die("mmap failed");
    memset(rep, 0, sizeof(*rep));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        gc_collect(GC_GEN_OLDEST);
        int bad = ps_count_copied(heap_s, 0, &rep->copied) < 0
                  || ps_count_copied(side_s, 0, &rep->side_copied) < 0;
        _exit(bad ? 1 : 0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid failed");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the collecting child failed");
    *out = *rep;
    out->heap_pages = ps_snap_pages(heap_s);
    out->side_pages = ps_snap_pages(side_s);
    munmap(rep, sizeof(*rep));
    ps_snap_free(heap_s);
    ps_snap_free(side_s);
}

static void
layouts(void)
{
    static const rt_gc_layout_t all[] = { RT_GC_INLINE, RT_GC_SIDE,
                                          RT_GC_BITMAP };
    double inline_ms = 0;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        const char *name = rt_gc_layout_name(all[k]);
        rt_opts_t o;
        rt_opts_default(&o);
        o.gc_layout = all[k];
        rt_heap_t *h = rt_heap_new_opts(&o);
        rt_obj_t *registry;
        double build_ms;
        if (h == NULL)
            die("rt_heap_new_opts failed");
        gc_disable();
        build_heap_into(h, &registry, &build_ms);
        gc_collect(GC_GEN_OLDEST);      /* settle: all in the oldest */
        double best = -1;
        for (int r = 0; r < RUNS; r++) {
            double t0 = clk_now_ms();
            gc_collect(GC_GEN_OLDEST);
            double ms = clk_now_ms() - t0;
            if (best < 0 || ms < best)
                best = ms;
        }
        rt_overhead_t ov;
        rt_get_overhead(h, &ov);
        cow_t c;
        child_collection(&c);
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        printf("%s_heap_pages: %zu pages\n", name, c.heap_pages);
        printf("%s_gc_full_copied_pct: %.2f %%\n", name,
               100.0 * (double)c.copied / (double)c.heap_pages);
        printf("%s_gc_full_side_copied_pages: %zu pages (of %zu)\n", name,
               c.side_copied, c.side_pages);
        printf("%s_gc_full_ms_1m: %.3f ms\n", name, best);
        if (all[k] == RT_GC_INLINE)
            inline_ms = best;
        else
            printf("%s_gc_full_ratio_vs_inline: %.3f ratio\n", name,
                   best / inline_ms);
        printf("%s_bytes_per_object: %.2f bytes (%zu GC-able objects)\n",
               name, (double)(ov.gc_inline_bytes + ov.gc_side_pages * pg)
                     / (double)ov.gc_objects, ov.gc_objects);
        rt_decref(registry);
        rt_heap_free(h);
    }
}

int
main(void)
{
    /* CPython first, while this process is small and idle. */
    const char *why = NULL;
    double py_ms = cpython_gc_ms(&why);

    /* 1. A full collection, then finalization, in the building process
     *    (never forked: its pages are its own). */
    rt_obj_t *registry;
    double build_ms;
    rt_heap_t *h = heap_up(&registry, &build_ms);
    printf("build_ms_1m: %.1f ms\n", build_ms);
    printf("gc_tracked_1m: %zu objects\n", tracked());
    double best = -1;
    long collected = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = clk_now_ms();
        collected = gc_collect(GC_GEN_OLDEST);
        double ms = clk_now_ms() - t0;
        if (best < 0 || ms < best)
            best = ms;
    }
    printf("gc_collected_1m: %ld objects\n", collected);
    printf("gc_full_ms_1m: %.3f ms\n", best);
    if (py_ms > 0)
        printf("gc_full_ratio_vs_cpython: %.3f ratio\n", best / py_ms);
    else
        printf("gc_full_ratio_vs_cpython: n/a (%s)\n", why);
    rt_decref(registry);                /* the module still holds it */
    rt_teardown_t st = { 0 };           /* no before_release hook */
    if (rt_finalize(h, &st) < 0)
        die("finalize ran out of memory");
    printf("finalize_ms_1m: %.3f ms\n", st.wall_ms);
    printf("finalize_minflt_1m: %ld faults\n", st.minflt);
    printf("finalize_deallocated_1m: %zu objects\n", st.deallocated);

    layouts();

    /* 2. The same heap again, collected once as above, in a master that
     *    forks children which leave one way or the other. */
    h = heap_up(&registry, &build_ms);
    gc_collect(GC_GEN_OLDEST);
    exit_report_t *rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rep == MAP_FAILED)
        die("mmap failed");
    double skip[RUNS], fin[RUNS], fin_ms[RUNS], fin_flt[RUNS];
    for (int r = 0; r < RUNS; r++) {
        skip[r] = child_exit_ms(h, registry, 0, rep);
        fin[r] = child_exit_ms(h, registry, 1, rep);
        fin_ms[r] = rep->st.wall_ms;
        fin_flt[r] = (double)rep->st.minflt;
    }
    printf("skip_exit_ms: %.3f ms\n", median(skip, RUNS));
    printf("finalize_exit_ms: %.3f ms\n", median(fin, RUNS));
    printf("finalize_forked_ms_1m: %.3f ms\n", median(fin_ms, RUNS));
    printf("finalize_forked_minflt_1m: %.0f faults\n",
           median(fin_flt, RUNS));
    munmap(rep, sizeof(*rep));
    fflush(stdout);
    rt_skip_exit(0);            /* this heap's teardown is not measured */
}
