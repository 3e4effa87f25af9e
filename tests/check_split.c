/* check_split.c -- the runtime's designs beyond CPython (issue 13):
 * split refcounts (--refcount split: rt_before_fork, rc.c) proved with
 * pagemap in forked children, each against a control that copies, and
 * the warm-up (rt_warmup, mem_trim) with every step's figure exact on a
 * heap built for it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc.h"
#include "mem.h"
#include "object.h"
#include "procstat.h"
#include "support.h"

static rt_heap_t *heap;

static rt_heap_t *
heap_with(int split)
{
    rt_opts_t o;
    rt_opts_default(&o);            /* COWLAB_GC_LAYOUT applies */
    o.refcount = split ? RT_RC_SPLIT : RT_RC_INLINE;
    return rt_heap_new_opts(&o);
}
static void setup_split(void)  { heap = heap_with(1); ck_assert_ptr_nonnull(heap); }
static void setup_inline(void) { heap = heap_with(0); ck_assert_ptr_nonnull(heap); }
static void setup(void)        { heap = rt_heap_new(); ck_assert_ptr_nonnull(heap); }
static void teardown(void)     { rt_heap_free(heap); heap = NULL; }

#ifdef RT_MALLOC_BYPASS
#define SKIP_IN_BYPASS() TS_SKIP("page figures need the arena allocator " \
        "(RT_MALLOC_BYPASS sends objects to malloc)")
#else
#define SKIP_IN_BYPASS() ((void)0)
#endif

/* ---- a heap of thousands ---------------------------------------------- */

enum { NREC = 5000 };

/* Module "app" holds a list of NREC tuples (str, int, float, list of one
 * str): 6 objects a record, a few pages' worth of each kind. */
static void
build_records(void)
{
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *recs = rt_list_new(heap);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(recs);
    for (int i = 0; i < NREC; i++) {
        char buf[32];
        rt_obj_t *t = rt_tuple_new(heap, 4), *l = rt_list_new(heap);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(l);
        snprintf(buf, sizeof buf, "record-%d", i);
        rt_tuple_set_steal(t, 0, rt_str_from(heap, buf));
        rt_tuple_set_steal(t, 1, rt_int_new(heap, 100000 + i));
        rt_tuple_set_steal(t, 2, rt_float_new(heap, i + 0.5));
        snprintf(buf, sizeof buf, "tag-%d", i);
        ck_assert_int_eq(rt_list_append_steal(l, rt_str_from(heap, buf)), 0);
        rt_tuple_set_steal(t, 3, l);
        ck_assert_int_eq(rt_list_append_steal(recs, t), 0);
    }
    ck_assert_int_eq(rt_dict_set_str(heap, rt_module_dict(m), "recs", recs),
                     0);
    rt_decref(recs);
    rt_decref(m);
}

/* Every object of the heap, once each (a walk, into malloc()ed memory). */
typedef struct {
    rt_obj_t **v;
    size_t n, cap;
    size_t mortal;
} objs_t;

static void
collect_obj(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    objs_t *c = arg;
    (void)block;
    (void)len;
    if (c->n > 0 && c->v[c->n - 1] == o)
        return;                     /* its item array or key table */
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        ck_assert_ptr_nonnull(c->v);
    }
    c->v[c->n++] = o;
    c->mortal += !rt_is_immortal(o) && !rt_is_shared(o);
}

static objs_t
all_objects(void)
{
    objs_t c = { NULL, 0, 0, 0 };
    ck_assert_int_ge(rt_heap_walk(heap, collect_obj, &c), 1);
    return c;
}

static ps_snap_t *
snapshot(void)
{
    static mem_range_t r[1024];
    long n = mem_ranges(r, 1024);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, 1024);
    ps_snap_t *s = NULL;
    int e = ps_snap_take(&s, 0, (const ps_range_t *)r, (size_t)n);
    ck_assert_msg(e == 0, "pagemap snapshot: %s", strerror(-e));
    return s;
}

/* Distinct pages holding the refcnt of one of objs. */
static int
cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static size_t
refcount_pages(const objs_t *c, int mortal_only)
{
    uintptr_t *p = malloc((c->n + 1) * sizeof(*p));
    size_t k = 0, distinct = 0;
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < c->n; i++)
        if (!mortal_only || !rt_is_immortal(c->v[i]))
            p[k++] = (uintptr_t)&c->v[i]->refcnt
                     & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    qsort(p, k, sizeof(*p), cmp_uptr);
    for (size_t i = 0; i < k; i++)
        distinct += i == 0 || p[i] != p[i - 1];
    free(p);
    return distinct;
}

/* What a child reports through the pipe. */
typedef struct {
    size_t copied;                  /* heap pages now private to it */
    size_t entries;                 /* its split table's entries */
    size_t bad;                     /* counts that read wrong */
} child_t;

/* Fork; the child increfs and decrefs every object of c once, checking
 * that rt_refcnt() follows, then counts the snapshot's copied pages. */
static child_t
read_all_in_child(ps_snap_t *s, const objs_t *c)
{
    int fds[2];
    child_t r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rt_overhead_t ov;
        for (size_t i = 0; i < c->n; i++) {
            rt_obj_t *o = c->v[i];
            intptr_t n0 = rt_refcnt(o), raw = o->refcnt;
            rt_incref(o);
            r.bad += !rt_is_immortal(o) && rt_refcnt(o) != n0 + 1;
            rt_decref(o);
            r.bad += rt_refcnt(o) != n0;
            r.bad += rt_is_shared(o) && o->refcnt != raw;
        }
        rt_get_overhead(heap, &ov);
        r.entries = ov.rc_table_entries;
        if (ps_count_copied(s, 0, &r.copied) != 0
            || write(fds[1], &r, sizeof r) != sizeof r)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &r, sizeof r), sizeof r);
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    return r;
}

/* ---- split refcounts -------------------------------------------------- */

START_TEST(split_child_reads_write_no_page)
{
    SKIP_IN_BYPASS();
    build_records();
    objs_t c = all_objects();
    ck_assert_uint_ge(c.n, NREC * 6);
    size_t rcpages = refcount_pages(&c, 1);

    /* Control: nothing is shared yet, so the child's reads write every
     * mortal object's count: exactly the pages holding one are copied. */
    ps_snap_t *s = snapshot();
    child_t r = read_all_in_child(s, &c);
    printf("designs: split, before rt_before_fork: %zu objects read, "
           "%zu of %zu heap pages copied (%zu hold a mortal count)\n",
           c.n, r.copied, ps_snap_pages(s), rcpages);
    ck_assert_uint_eq(r.bad, 0);
    ck_assert_uint_eq(r.entries, 0);
    ck_assert_uint_eq(r.copied, rcpages);
    ps_snap_free(s);

    /* Shared: the same reads go to the child's table, one entry per
     * object read (immortal ones excepted), and copy nothing. */
    ck_assert_int_eq(rt_before_fork(heap), (long)c.mortal);
    s = snapshot();
    r = read_all_in_child(s, &c);
    printf("designs: split, after rt_before_fork: %zu of %zu heap pages "
           "copied, %zu table entries\n", r.copied, ps_snap_pages(s),
           r.entries);
    ck_assert_uint_eq(r.bad, 0);
    ck_assert_uint_eq(r.entries, c.mortal);
    ck_assert_uint_eq(r.copied, 0);
    ps_snap_free(s);
    free(c.v);
}
END_TEST

START_TEST(split_before_fork_marks_once_skips_immortal)
{
    rt_obj_t *keep = rt_list_new(heap);
    rt_obj_t *imm = rt_str_from(heap, "immortal");
    rt_obj_t *s = rt_str_from(heap, "shared");
    ck_assert_int_eq(rt_list_append(keep, imm), 0);
    ck_assert_int_eq(rt_list_append(keep, s), 0);
    rt_immortalize(imm);
    objs_t c = all_objects();
    long marked = rt_before_fork(heap);
    ck_assert_int_eq(marked, (long)c.mortal);
    ck_assert_int_ge(marked, 2);             /* keep and s at least */
    ck_assert(rt_is_shared(s) && rt_is_shared(keep));
    ck_assert(!rt_is_immortal(s));
    /* The immortal one is neither marked nor counted in the table. */
    ck_assert_int_eq(imm->refcnt, RT_IMMORTAL_REFCNT);
    ck_assert(rt_is_immortal(imm) && !rt_is_shared(imm));
    rt_incref(imm);
    rt_overhead_t ov;
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_table_entries, 0);
    ck_assert_uint_eq(ov.rc_shared, (size_t)marked);
    /* Again: nothing new to mark. */
    ck_assert_int_eq(rt_before_fork(heap), 0);
    /* s: ours and the list's, in the object; our reference goes to the
     * table as -1, the count in the object stays 2. */
    ck_assert_int_eq(rt_refcnt(s), 2);
    rt_decref(s);
    ck_assert_int_eq(rt_refcnt(s), 1);
    ck_assert_int_eq(s->refcnt, RT_SHARED_BIT | 2);
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_table_entries, 1);
    ck_assert_uint_ge(ov.rc_table_bytes, 16 * ov.rc_table_entries);
    free(c.v);
    rt_decref(keep);
}
END_TEST

START_TEST(split_frees_when_sum_reaches_zero)
{
    rt_obj_t *l = rt_list_new(heap);
    rt_obj_t *s = rt_str_from(heap, "held by the list only");
    ck_assert_int_eq(rt_list_append_steal(l, s), 0);
    ck_assert_int_ge(rt_before_fork(heap), 2);
    ck_assert(rt_is_shared(s));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        size_t objs = rt_heap_objects(heap);
        rt_overhead_t ov;
        rt_incref(s);                        /* the child's reference */
        if (rt_list_del(l, 0) != 0)          /* the parent's, dropped */
            _exit(10);
        if (rt_heap_objects(heap) != objs || rt_refcnt(s) != 1
            || s->refcnt != (RT_SHARED_BIT | 1))
            _exit(11);                       /* freed too early */
        rt_get_overhead(heap, &ov);
        size_t entries = ov.rc_table_entries, shared = ov.rc_shared;
        rt_decref(s);                        /* 1 + (+1 - 1 - 1) = 0 */
        rt_get_overhead(heap, &ov);
        if (rt_heap_objects(heap) != objs - 1)
            _exit(12);                       /* not freed */
        if (ov.rc_table_entries != entries - 1
            || ov.rc_shared != shared - 1)
            _exit(13);                       /* its entry left behind */
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    /* The parent's heap is as it was. */
    ck_assert_int_eq(rt_refcnt(s), 1);
    ck_assert_uint_eq(rt_list_len(l), 1);
    rt_decref(l);
}
END_TEST

/* A cycle made before fork, dropped in the child: the collector reads the
 * true counts (inline count + the child's deltas), so the cycle is found
 * and freed, in every layout.  Control: the same in the parent's heap
 * before the drop finds nothing. */
START_TEST(split_child_collects_shared_cycle)
{
    rt_obj_t *mod = rt_module_new(heap, "m");
    rt_obj_t *a = rt_list_new(heap), *b = rt_list_new(heap);
    ck_assert_int_eq(rt_list_append(a, b), 0);
    ck_assert_int_eq(rt_list_append(b, a), 0);
    ck_assert_int_eq(rt_dict_set_str(heap, rt_module_dict(mod), "a", a), 0);
    rt_decref(a);
    rt_decref(b);
    gc_collect(2);
    ck_assert_int_ge(rt_before_fork(heap), 3);
    ck_assert(rt_is_shared(a) && rt_is_shared(b));
    ck_assert_int_eq(gc_collect(2), 0);          /* held: nothing found */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        size_t objs = rt_heap_objects(heap);
        if (rt_dict_del(rt_module_dict(mod), rt_str_intern(heap, "a", 1)))
            _exit(10);
        if (rt_heap_objects(heap) != objs)
            _exit(11);                           /* a cycle: not by count */
        long n = gc_collect(2);
        if (n != 2)
            _exit(12);
        _exit(rt_heap_objects(heap) == objs - 2 ? 0 : 13);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    rt_decref(mod);
}
END_TEST

START_TEST(split_new_objects_use_inline_count)
{
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_int_ge(rt_before_fork(heap), 1);
    ck_assert(rt_is_shared(l));              /* control: made before */
    rt_obj_t *s = rt_str_from(heap, "made after");
    ck_assert_int_eq(s->refcnt, 1);
    ck_assert(!rt_is_shared(s));
    rt_incref(s);
    ck_assert_int_eq(s->refcnt, 2);          /* in the object */
    rt_overhead_t ov;
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_table_entries, 0);
    /* Until the next rt_before_fork, which marks it. */
    ck_assert_int_eq(rt_list_append(l, s), 0);
    ck_assert_int_eq(rt_before_fork(heap), 1);
    ck_assert(rt_is_shared(s));
    ck_assert_int_eq(rt_refcnt(s), 3);
    rt_decref(s);
    rt_decref(s);
    rt_decref(l);
}
END_TEST

START_TEST(split_table_oom_falls_back_to_inline)
{
    rt_obj_t *l = rt_list_new(heap);
    rt_obj_t *s = rt_str_from(heap, "x");
    ck_assert_int_eq(rt_list_append_steal(l, s), 0);
    ck_assert_int_ge(rt_before_fork(heap), 2);
    size_t objs = rt_heap_objects(heap);
    rt_overhead_t ov;
    /* The table does not exist yet: its first allocation fails. */
    mem_fail_after(1);
    rt_incref(s);
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_fallbacks, 1);
    ck_assert_uint_eq(ov.rc_table_entries, 0);
    ck_assert_int_eq(s->refcnt, RT_SHARED_BIT | 2);  /* written inline */
    ck_assert_int_eq(rt_refcnt(s), 2);
    /* Memory again: the next ones go to the table, the sum holds. */
    rt_decref(s);
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_fallbacks, 1);
    ck_assert_uint_eq(ov.rc_table_entries, 1);
    ck_assert_int_eq(s->refcnt, RT_SHARED_BIT | 2);
    ck_assert_int_eq(rt_refcnt(s), 1);
    /* The list's reference goes too: 2 in the object, -2 in the table. */
    ck_assert_int_eq(rt_list_del(l, 0), 0);
    ck_assert_uint_eq(rt_heap_objects(heap), objs - 1);
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_table_entries, 0);
    rt_decref(l);
}
END_TEST

START_TEST(split_decref_oom_frees_at_zero)
{
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_int_eq(rt_list_append_steal(l, rt_str_from(heap, "y")), 0);
    ck_assert_int_ge(rt_before_fork(heap), 2);
    size_t objs = rt_heap_objects(heap);
    rt_overhead_t ov;
    mem_fail_after(1);              /* the table's first allocation */
    ck_assert_int_eq(rt_list_del(l, 0), 0);          /* 1 - 1, inline */
    mem_fail_after(0);
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_fallbacks, 1);
    ck_assert_uint_eq(ov.rc_table_entries, 0);
    ck_assert_uint_eq(rt_heap_objects(heap), objs - 1);
    rt_decref(l);
}
END_TEST

START_TEST(inline_before_fork_marks_nothing)
{
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_int_eq(rt_before_fork(heap), 0);
    ck_assert_int_eq(l->refcnt, 1);
    ck_assert(!rt_is_shared(l));
    rt_overhead_t ov;
    rt_get_overhead(heap, &ov);
    ck_assert_uint_eq(ov.rc_shared, 0);
    ck_assert_uint_eq(ov.rc_table_bytes, 0);
    rt_decref(l);
}
END_TEST

/* ---- warm-up ---------------------------------------------------------- */

enum { NCYCLES = 100, NSTRS = 1000, NHASHED = 300 };

START_TEST(warmup_collects_promotes_hashes_freezes)
{
    rt_warmup_t w;
    /* A first warm-up leaves nothing to do but what is made next. */
    ck_assert_int_eq(rt_warmup(heap, &w), 0);
    size_t frozen0 = w.frozen;
    ck_assert_uint_eq(frozen0, gc_get_freeze_count());
    /* NCYCLES cycles of 2 lists (garbage), a rooted list r of NSTRS new
     * strs, NHASHED of them hashed already: 2 * NCYCLES + 1 young
     * containers, below the threshold (no automatic collection). */
    for (int i = 0; i < NCYCLES; i++) {
        rt_obj_t *a = rt_list_new(heap), *b = rt_list_new(heap);
        ck_assert_int_eq(rt_list_append(a, b), 0);
        ck_assert_int_eq(rt_list_append(b, a), 0);
        rt_decref(a);
        rt_decref(b);
    }
    rt_obj_t *r = rt_list_new(heap);
    for (int i = 0; i < NSTRS; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "warm-%d", i);
        rt_obj_t *s = rt_str_from(heap, buf);
        if (i < NHASHED)
            rt_hash(s);
        ck_assert_int_eq(rt_list_append_steal(r, s), 0);
    }
    ck_assert_uint_eq(gc_gen_size(0) + gc_gen_size(1), 2 * NCYCLES + 1);
    ck_assert_int_eq(rt_warmup(heap, &w), 0);
    printf("designs: warm-up: collected %ld, promoted %zu, hashes %zu, "
           "frozen %zu, %.2f ms\n", w.collected, w.promoted, w.hashes,
           w.frozen, w.ms);
    ck_assert_int_eq(w.collected, 2 * NCYCLES);
    ck_assert_uint_eq(w.promoted, 2 * NCYCLES + 1);
    ck_assert_uint_eq(w.hashes, NSTRS - NHASHED);
    ck_assert_uint_eq(w.frozen, frozen0 + 1);        /* r */
    ck_assert_uint_eq(gc_get_freeze_count(), frozen0 + 1);
    ck_assert_uint_eq(gc_gen_size(0) + gc_gen_size(1) + gc_gen_size(2), 0);
    /* Control: again, nothing is left to do. */
    ck_assert_int_eq(rt_warmup(heap, &w), 0);
    ck_assert_int_eq(w.collected, 0);
    ck_assert_uint_eq(w.promoted, 0);
    ck_assert_uint_eq(w.hashes, 0);
    ck_assert_uint_eq(w.pools_released + w.arenas_released
                      + w.pages_released, 0);
    ck_assert_uint_eq(w.frozen, frozen0 + 1);
    gc_unfreeze();
    rt_decref(r);
}
END_TEST

/* Bytes objects of the 496-byte class (24 + 470 + 1 bytes: no other
 * object of this heap is that size), enough to fill more than two
 * arenas. */
#define BIG_LEN     470
#define NBIG        ((3 * MEM_ARENA_SIZE) / 496 + 1000)

START_TEST(warmup_releases_empty_pools_and_arena)
{
    SKIP_IN_BYPASS();
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t pool_pages = MEM_POOL_SIZE / ps;
    size_t pools, arenas;
    /* What the fresh heap has to give back first, so that every empty
     * pool left after the next steps is one emptied by them. */
    mem_trim(&pools, &arenas);
    mem_stats_t st0, st1, st2;
    mem_get_stats(&st0);
    static char text[BIG_LEN];
    memset(text, 'b', sizeof text);
    rt_obj_t **v = malloc(NBIG * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < NBIG; i++) {
        v[i] = rt_bytes_new(heap, text, sizeof text);
        ck_assert_ptr_nonnull(v[i]);
    }
    /* They reused every empty pool (st0.pools_empty, taken first), then
     * filled the first arena and at least two new ones: freed in the same
     * order, the first new arena to empty is kept, the later ones are
     * unmapped at once. */
    mem_get_stats(&st1);
    ck_assert_uint_ge(st1.arenas_live, st0.arenas_live + 3);
    for (size_t i = 0; i < NBIG; i++)
        rt_decref(v[i]);
    free(v);
    mem_get_stats(&st1);
    ck_assert_uint_eq(st1.arenas_live, st0.arenas_live + 1);
    /* Empty pools now: those of the first arenas that held the bytes,
     * and the kept arena's MEM_POOLS_PER_ARENA, every page of each
     * written. */
    ck_assert_uint_gt(st1.pools_empty, MEM_POOLS_PER_ARENA);
    size_t emptied = st1.pools_empty - MEM_POOLS_PER_ARENA;
    rt_warmup_t w;
    ck_assert_int_eq(rt_warmup(heap, &w), 0);
    printf("designs: warm-up released %zu pools, %zu arenas, %zu pages\n",
           w.pools_released, w.arenas_released, w.pages_released);
    ck_assert_uint_eq(w.arenas_released, 1);
    ck_assert_uint_eq(w.pools_released, pool_pages > 1 ? emptied : 0);
    ck_assert_uint_eq(w.pages_released, (pool_pages - 1) * w.pools_released
                      + MEM_ARENA_SIZE / ps);
    mem_get_stats(&st2);
    ck_assert_uint_eq(st2.arenas_live, st0.arenas_live);
    ck_assert_uint_eq(st2.pools_empty, emptied);     /* kept, empty */
    /* Control: nothing left to give. */
    ck_assert_uint_eq(mem_trim(&pools, &arenas), 0);
    ck_assert_uint_eq(pools + arenas, 0);
    /* A pool given back is used again like any empty one. */
    rt_obj_t *b = rt_bytes_new(heap, text, sizeof text);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(rt_bytes_data(b)[0], 'b');
    rt_decref(b);
    gc_unfreeze();
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("designs");
    TCase *tc = tcase_create("split");
    tcase_add_checked_fixture(tc, setup_split, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, split_child_reads_write_no_page);
    tcase_add_test(tc, split_before_fork_marks_once_skips_immortal);
    tcase_add_test(tc, split_frees_when_sum_reaches_zero);
    tcase_add_test(tc, split_new_objects_use_inline_count);
    tcase_add_test(tc, split_child_collects_shared_cycle);
    tcase_add_test(tc, split_table_oom_falls_back_to_inline);
    tcase_add_test(tc, split_decref_oom_frees_at_zero);
    suite_add_tcase(s, tc);
    tc = tcase_create("inline");
    tcase_add_checked_fixture(tc, setup_inline, teardown);
    tcase_add_test(tc, inline_before_fork_marks_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("warmup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, warmup_collects_promotes_hashes_freezes);
    tcase_add_test(tc, warmup_releases_empty_pools_and_arena);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
