/* check_gc.c -- unit tests for runtime/gc.c: cycles, thresholds, the
 * long-lived rule, freeze, callbacks, a randomized reachability check, and
 * the copy-on-write proofs: what a forked child's collection, reads and
 * finalization copy of the parent's heap pages, read from pagemap. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc.h"
#include "internal.h"
#include "mem.h"
#include "object.h"
#include "procstat.h"
#include "support.h"

static rt_heap_t *heap;
static void setup(void)    { heap = rt_heap_new(); ck_assert_ptr_nonnull(heap); }
static void teardown(void) { rt_heap_free(heap); heap = NULL; }

static void
assert_heap_sound(void)
{
    char msg[256];
    int r = gc_check_heap(msg, sizeof msg);
    ck_assert_msg(r == 0, "heap check: %s", msg);
}

START_TEST(gc_collects_self_cycle)
{
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_int_eq(rt_list_append(l, l), 0);
    rt_decref(l);                            /* only the cycle keeps it */
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 1);
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 0);
    assert_heap_sound();
}
END_TEST

START_TEST(gc_collects_ring_and_keeps_rooted)
{
    rt_obj_t *first = rt_list_new(heap), *prev = first;
    for (int i = 1; i < 10; i++) {
        rt_obj_t *l = rt_list_new(heap);
        rt_list_append(prev, l);
        rt_decref(l);
        prev = l;
    }
    rt_list_append(prev, first);
    ck_assert_int_eq(gc_collect(2), 0);      /* we still hold first */
    rt_decref(first);
    ck_assert_int_eq(gc_collect(2), 10);
    assert_heap_sound();
}
END_TEST

START_TEST(gc_young_collection_spares_old_referents)
{
    /* A cycle in gen 0 referenced from an object in gen 2 survives a
     * gen-0 collection: the reference from outside the generation counts. */
    rt_obj_t *old = rt_list_new(heap);
    gc_collect(2);                           /* old is now in gen 2 */
    rt_obj_t *a = rt_list_new(heap), *b = rt_list_new(heap);
    rt_list_append(a, b);
    rt_list_append(b, a);
    rt_list_append(old, a);
    rt_decref(a);
    rt_decref(b);
    ck_assert_int_eq(gc_collect(0), 0);
    ck_assert_uint_eq(gc_gen_size(1), 2);
    rt_list_del(old, 0);
    ck_assert_int_eq(gc_collect(1), 2);
    rt_decref(old);
}
END_TEST

START_TEST(gc_threshold_triggers_gen0)
{
    gc_genstats_t st[GC_NGENS];
    long count[GC_NGENS];
    gc_collect(2);
    gc_set_threshold(10, 10, 10);
    rt_obj_t *keep[11];
    for (int i = 0; i < 10; i++)
        keep[i] = rt_list_new(heap);
    gc_get_stats(st);
    gc_get_count(count);
    ck_assert_uint_eq(st[0].collections, 0);
    ck_assert_int_eq(count[0], 10);
    keep[10] = rt_list_new(heap);            /* count 11 > 10 */
    gc_get_stats(st);
    gc_get_count(count);
    ck_assert_uint_eq(st[0].collections, 1);
    ck_assert_int_eq(count[0], 0);
    ck_assert_int_eq(count[1], 1);
    ck_assert_uint_eq(gc_gen_size(1), 10);   /* the new one is untracked
                                                during the collection */
    for (int i = 0; i < 11; i++)
        rt_decref(keep[i]);
    gc_get_count(count);
    ck_assert_int_eq(count[0], 0);           /* never below zero */
}
END_TEST

START_TEST(gc_threshold_zero_and_disable_stop_automatic)
{
    gc_genstats_t st[GC_NGENS];
    rt_obj_t *l = rt_list_new(heap);
    gc_set_threshold(0, 10, 10);             /* gc.set_threshold(0) */
    for (int i = 0; i < 10000; i++)
        rt_list_append_steal(l, rt_list_new(heap));
    gc_get_stats(st);
    ck_assert_uint_eq(st[0].collections, 0);
    gc_set_threshold(700, 10, 10);
    gc_disable();
    ck_assert(!gc_isenabled());
    for (int i = 0; i < 10000; i++)
        rt_list_append_steal(l, rt_list_new(heap));
    gc_get_stats(st);
    ck_assert_uint_eq(st[0].collections, 0);
    gc_enable();
    rt_list_append_steal(l, rt_list_new(heap));
    gc_get_stats(st);
    ck_assert_uint_eq(st[0].collections, 1);
    /* explicit collections run whatever the thresholds */
    gc_set_threshold(0, 0, 0);
    ck_assert_int_eq(gc_collect(2), 0);
    rt_decref(l);
}
END_TEST

START_TEST(gc_full_collection_waits_for_long_lived_pending)
{
    gc_genstats_t st[GC_NGENS];
    rt_obj_t *root = rt_list_new(heap);
    for (int i = 0; i < 10000; i++)
        rt_list_append_steal(root, rt_list_new(heap));
    gc_collect(2);                           /* long_lived_total ~ 10001 */
    gc_get_stats(st);
    size_t full0 = st[2].collections;        /* that explicit one */
    gc_set_threshold(10, 1, 1);
    /* 1000 survivors promoted: pending 1000 < 10001 / 4: no full one. */
    for (int i = 0; i < 1000; i++)
        rt_list_append_steal(root, rt_list_new(heap));
    gc_get_stats(st);
    ck_assert_uint_gt(st[1].collections, 10);
    ck_assert_uint_eq(st[2].collections, full0);
    /* 2000 more: pending passes 25% and one full collection runs (after
     * it, long_lived_total ~ 12500: the rest cannot reach 25% again). */
    for (int i = 0; i < 2000; i++)
        rt_list_append_steal(root, rt_list_new(heap));
    gc_get_stats(st);
    ck_assert_uint_eq(st[2].collections, full0 + 1);
    rt_decref(root);
}
END_TEST

START_TEST(gc_freeze_keeps_cycle_until_unfreeze)
{
    rt_obj_t *a = rt_list_new(heap), *b = rt_dict_new(heap);
    rt_list_append(a, b);
    rt_dict_set_str(heap, b, "a", a);
    rt_decref(a);
    rt_decref(b);
    size_t tracked = gc_gen_size(0) + gc_gen_size(1) + gc_gen_size(2);
    gc_freeze();
    ck_assert_uint_eq(gc_get_freeze_count(), tracked);
    ck_assert_uint_eq(gc_gen_size(0) + gc_gen_size(1) + gc_gen_size(2), 0);
    long count[GC_NGENS];
    gc_get_count(count);
    ck_assert_int_eq(count[0], 0);
    ck_assert_int_eq(gc_collect(2), 0);
    gc_unfreeze();
    ck_assert_uint_eq(gc_get_freeze_count(), 0);
    ck_assert_uint_eq(gc_gen_size(2), tracked);
    ck_assert_int_eq(gc_collect(2), 2);
    assert_heap_sound();
}
END_TEST

static int cb_calls[2];
static long cb_collected;
static void
count_cb(int phase, int gen, long collected, void *arg)
{
    (void)gen;
    (void)arg;
    cb_calls[phase]++;
    if (phase == 1)
        cb_collected += collected;
}

START_TEST(gc_callbacks_bracket_each_collection)
{
    gc_set_callback(count_cb, NULL);
    rt_obj_t *l = rt_list_new(heap);
    rt_list_append(l, l);
    rt_decref(l);
    gc_collect(0);
    gc_collect(2);
    ck_assert_int_eq(cb_calls[0], 2);
    ck_assert_int_eq(cb_calls[1], 2);
    ck_assert_int_eq(cb_collected, 1);
    gc_genstats_t st[GC_NGENS];
    gc_get_stats(st);
    ck_assert_uint_eq(st[0].collected, 1);
    gc_set_callback(NULL, NULL);
}
END_TEST

/* Random graphs: gc_collect(2) must find exactly the objects that the
 * roots cannot reach, computed here independently by a graph search. */
START_TEST(gc_random_graphs_exact_unreachable)
{
    enum { N = 3000, EDGES = 4500, ROOTS = 60 };
    unsigned seed = 12345;
    char key[16];
    for (int k = 0; k < 8; k++) {            /* intern the keys up front */
        snprintf(key, sizeof key, "e%d", k);
        rt_decref(rt_str_intern(heap, key, strlen(key)));
    }
    rt_obj_t *cls = rt_class_new(heap, "Node", NULL);
    ck_assert_ptr_nonnull(cls);
    gc_collect(2);
    size_t objs0 = rt_heap_objects(heap);
    for (int round = 0; round < 5; round++) {
        rt_obj_t *objs[N];
        static int adj[N][8];
        static int nadj[N];
        memset(nadj, 0, sizeof nadj);
        for (int i = 0; i < N; i++) {
            switch (rand_r(&seed) % 4) {
            case 0: objs[i] = rt_dict_new(heap); break;
            case 1: objs[i] = rt_instance_new(heap, cls); break;
            default: objs[i] = rt_list_new(heap); break;
            }
        }
        for (int e = 0; e < EDGES; e++) {
            int a = rand_r(&seed) % N, b = rand_r(&seed) % N;
            if (nadj[a] == 8)
                continue;
            rt_obj_t *c = objs[a];
            if (c->type == &rt_list_type) {
                rt_list_append(c, objs[b]);
            } else {
                snprintf(key, sizeof key, "e%d", nadj[a]);
                if (c->type == &rt_dict_type)
                    rt_dict_set_str(heap, c, key, objs[b]);
                else            /* an attribute in its values block */
                    rt_instance_setattr_str(heap, c, key, objs[b]);
            }
            adj[a][nadj[a]++] = b;
        }
        rt_obj_t *root = rt_list_new(heap);
        static char seen[N];
        int stack[N], sp = 0, reached = 0;
        memset(seen, 0, sizeof seen);
        for (int r = 0; r < ROOTS; r++) {
            int i = rand_r(&seed) % N;
            rt_list_append(root, objs[i]);
            if (!seen[i]) {
                seen[i] = 1;
                stack[sp++] = i;
            }
        }
        while (sp > 0) {
            int i = stack[--sp];
            reached++;
            for (int k = 0; k < nadj[i]; k++)
                if (!seen[adj[i][k]]) {
                    seen[adj[i][k]] = 1;
                    stack[sp++] = adj[i][k];
                }
        }
        /* Instances keep their attributes inline: one object each, unless
         * the class's shared keys filled up first (every new instance
         * shrinks their room by one, as CPython's), and the instance got
         * a dict of its own. */
        size_t expect = 0;
        for (int i = 0; i < N; i++)
            if (seen[i])
                expect += rt_kind(objs[i]) == &rt_instance_type
                          && rt_instance_has_dict(objs[i]) ? 2 : 1;
        for (int i = 0; i < N; i++)
            rt_decref(objs[i]);
        /* Refcounting freed the acyclic garbage; the collector must free
         * exactly the cyclic rest and nothing reachable. */
        long n = gc_collect(2);
        ck_assert_int_ge(n, 0);
        ck_assert_uint_eq(rt_heap_objects(heap), objs0 + 1 + expect);
        ck_assert_int_eq(gc_collect(2), 0);
        assert_heap_sound();
        rt_decref(root);
        gc_collect(2);
        ck_assert_uint_eq(rt_heap_objects(heap), objs0);
        (void)reached;
    }
    rt_decref(cls);
}
END_TEST

/* ---- copy-on-write proofs ----------------------------------------------
 * A heap of NREC records, each an instance whose attributes (inline, as
 * CPython 3.11+ keeps them) are a str, an int and a list of two strs: 2
 * tracked containers a record.  The
 * parent takes a pagemap snapshot of the heap ranges, forks, the child
 * acts and counts the snapshot pages it now holds exclusively (copied). */

enum { NREC = 40000 };
static rt_obj_t *records;                    /* list of the instances */

static void
build_records(void)
{
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *cls = rt_class_new(heap, "Record", NULL);
    records = rt_list_new(heap);
    for (int i = 0; i < NREC; i++) {
        char buf[32];
        rt_obj_t *o = rt_instance_new(heap, cls), *v;
        snprintf(buf, sizeof buf, "record-%d", i);
        v = rt_str_from(heap, buf);
        rt_instance_setattr_str(heap, o, "name", v);
        rt_decref(v);
        v = rt_int_new(heap, 1000 + i);
        rt_instance_setattr_str(heap, o, "n", v);
        rt_decref(v);
        rt_obj_t *tags = rt_list_new(heap);
        rt_list_append_steal(tags, rt_str_from(heap, "tag-a"));
        rt_list_append_steal(tags, rt_str_from(heap, "tag-b"));
        rt_instance_setattr_str(heap, o, "tags", tags);
        rt_decref(tags);
        rt_list_append_steal(records, o);
    }
    rt_dict_set_str(heap, rt_module_dict(m), "records", records);
    rt_decref(records);                      /* the module holds it */
    rt_decref(cls);
    rt_decref(m);
    gc_collect(2);                           /* steady state: all in gen 2 */
}

/* Objects of the heap not immortal (a walk: each object once). */
typedef struct { const rt_obj_t *last; long mortal; } mortal_t;

static void
count_mortal(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    mortal_t *c = arg;
    (void)block;
    (void)len;
    if (o == c->last)           /* its item array or key table */
        return;
    c->last = o;
    c->mortal += !rt_is_immortal(o);
}

static long
mortal_objects(void)
{
    mortal_t c = { NULL, 0 };
    ck_assert_int_ge(rt_heap_walk(heap, count_mortal, &c), 0);
    return c.mortal;
}

static ps_snap_t *
snapshot(void)
{
    static mem_range_t r[1024];
    long n = mem_ranges(r, 1024);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, 1024);
    ps_snap_t *s = NULL;
    ck_assert_int_eq(ps_snap_take(&s, 0, (const ps_range_t *)r, (size_t)n),
                     0);
    return s;
}

/* Distinct heap pages holding the gc_head of a tracked object. */
static size_t gc_pages_n;
static uintptr_t *gc_pages;
static void
add_gc_page(rt_obj_t *o, void *arg)
{
    (void)arg;
    gc_pages[gc_pages_n++] = (uintptr_t)RT_AS_GC(o)
                             & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
}
static int
cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}
static size_t
pages_with_gc_heads(void)
{
    gc_pages = malloc(sizeof(uintptr_t) * 4 * NREC + 4096 * 8);
    gc_pages_n = 0;
    gc__foreach(add_gc_page, NULL);
    qsort(gc_pages, gc_pages_n, sizeof(uintptr_t), cmp_uptr);
    size_t distinct = 0;
    for (size_t i = 0; i < gc_pages_n; i++)
        if (i == 0 || gc_pages[i] != gc_pages[i - 1])
            distinct++;
    free(gc_pages);
    return distinct;
}


typedef enum { ACT_COLLECT, ACT_READ, ACT_FINALIZE } act_t;

static int
touch(rt_obj_t *o, void *arg)
{
    (void)arg;
    rt_incref(o);
    rt_decref(o);
    return 0;
}

static size_t
copied_by_child(ps_snap_t *s, act_t act)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_ge(rt_before_fork(heap), 0);  /* --refcount split */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        size_t copied = 0;
        int ok = 0;
        if (act == ACT_COLLECT) {
            gc_collect(2);
        } else if (act == ACT_READ) {
            /* What LOAD_ATTR does to each object it reads. */
            for (size_t i = 0; i < rt_list_len(records); i++) {
                rt_obj_t *o = rt_list_get(records, i);
                rt_incref(o);
                o->type->traverse(o, touch, NULL);
                rt_decref(o);
            }
        }
        if (act == ACT_FINALIZE) {
            rt_teardown_t st;
            memset(&st, 0, sizeof st);
            rt_finalize(heap, &st);
            copied = (size_t)st.minflt;      /* see the test */
            ok = 1;
        } else {
            ok = ps_count_copied(s, 0, &copied) == 0;
        }
        if (!ok || write(fds[1], &copied, sizeof copied) != sizeof copied)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    size_t copied = (size_t)-1;
    ck_assert_int_eq(read(fds[0], &copied, sizeof copied), sizeof copied);
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    return copied;
}

#ifdef RT_MALLOC_BYPASS
#define SKIP_IN_BYPASS() TS_SKIP("copy-on-write figures need the arena " \
        "allocator (RT_MALLOC_BYPASS sends objects to malloc)")
#else
#define SKIP_IN_BYPASS() ((void)0)
#endif
/* Fault counts include the tool's own faults under valgrind (make
 * valgrind sets COWLAB_VALGRIND): those tests need a plain run. */
#define SKIP_UNDER_VALGRIND() do { if (getenv("COWLAB_VALGRIND")) \
        TS_SKIP("valgrind takes page faults of its own"); } while (0)

START_TEST(gc_cow_full_collection_copies_gc_pages)
{
    SKIP_IN_BYPASS();
    build_records();
    int inl = rt_heap_gc_layout(heap) == RT_GC_INLINE;
    size_t gcp = inl ? pages_with_gc_heads() : 0;
    ps_snap_t *s = snapshot();
    size_t heap_pages = ps_snap_pages(s);
    size_t copied = copied_by_child(s, ACT_COLLECT);
    printf("cow: full collection copied %zu of %zu heap pages (%.1f%%); "
           "%zu pages hold gc heads\n", copied, heap_pages,
           100.0 * (double)copied / (double)heap_pages, gcp);
    /* update_refs() writes every tracked object's header: every page that
     * holds one is copied, and no other (every tracked object is in the
     * collected generations and the collection frees nothing).  Under
     * --gc-layout side or bitmap the collector's state is outside the
     * heap: not one heap page. */
    ck_assert_uint_eq(copied, gcp);
    ck_assert_uint_lt(copied, heap_pages);
    if (inl)
        ck_assert_uint_gt(copied, heap_pages / 4);
    ps_snap_free(s);
}
END_TEST

START_TEST(gc_cow_frozen_collection_copies_almost_nothing)
{
    SKIP_IN_BYPASS();
    build_records();
    gc_freeze();
    ps_snap_t *s = snapshot();
    size_t heap_pages = ps_snap_pages(s);
    size_t copied = copied_by_child(s, ACT_COLLECT);
    printf("cow: collection after freeze copied %zu of %zu heap pages\n",
           copied, heap_pages);
    /* The generations are empty and the permanent list is never visited:
     * the list heads live outside the heap, so 0 pages are written.  The
     * bound of 2 pages leaves room for an allocator page touched by a
     * future change without hiding a real regression (one page per
     * 100 objects would be hundreds of pages). */
    ck_assert_uint_le(copied, 2);
    ps_snap_free(s);
}
END_TEST

START_TEST(gc_cow_reads_copy_pages_unless_immortal)
{
    SKIP_IN_BYPASS();
    build_records();
    ps_snap_t *s = snapshot();
    size_t heap_pages = ps_snap_pages(s);
    size_t copied = copied_by_child(s, ACT_READ);
    printf("cow: reading every record copied %zu of %zu heap pages\n",
           copied, heap_pages);
    /* Each record's instance, str, int and list was incref'd: they fill
     * nearly half the pages; the values blocks, the lists' item arrays
     * and the tag strings sit on pages of their own and are not written.
     * (Without gc heads in the heap, side and bitmap pack the objects
     * on fewer pages: a quarter of them here.)  Under --refcount split
     * every one of them was shared at fork: the child's counts went to
     * its own table. */
    if (rt_heap_refcount(heap) == RT_RC_SPLIT)
        ck_assert_uint_eq(copied, 0);
    else if (rt_heap_gc_layout(heap) == RT_GC_INLINE)
        ck_assert_uint_ge(copied, heap_pages * 2 / 5);
    else
        ck_assert_uint_ge(copied, heap_pages / 5);
    ps_snap_free(s);

    /* Every object is reachable from the module or tracked: each one
     * not yet immortal (3.12's interned strings are) is made immortal,
     * none twice. */
    long mortal = mortal_objects();
    ck_assert_int_eq(rt_immortalize_heap(heap), mortal);
    s = snapshot();
    copied = copied_by_child(s, ACT_READ);
    printf("cow: reading every record after immortalize copied %zu pages\n",
           copied);
    ck_assert_uint_eq(copied, 0);            /* not one write */
    ps_snap_free(s);
}
END_TEST

START_TEST(gc_cow_finalize_copies_nearly_everything)
{
    SKIP_IN_BYPASS();
    SKIP_UNDER_VALGRIND();
    build_records();
    ps_snap_t *s = snapshot();
    size_t heap_pages = ps_snap_pages(s);
    size_t faults = copied_by_child(s, ACT_FINALIZE);
    printf("cow: finalize took %zu minor faults for %zu heap pages "
           "(%.1f%%)\n", faults, heap_pages,
           100.0 * (double)faults / (double)heap_pages);
    /* Freeing a block writes its free-list link, so every page holding a
     * live block is copied.  Arenas emptied on the way are unmapped (as
     * obmalloc does), so pagemap cannot show those copies afterwards: the
     * child counts its minor faults instead, one per copied page (plus a
     * few for its own stack and libc).  90% leaves room for the pages of
     * never-used blocks at the ends of pools. */
    ck_assert_uint_ge(faults, heap_pages * 9 / 10);
    ps_snap_free(s);
}
END_TEST

START_TEST(gc_cow_finalize_of_immortal_heap_copies_little)
{
    SKIP_IN_BYPASS();
    SKIP_UNDER_VALGRIND();
    build_records();
    gc_freeze();
    /* instance, name, n, tags list and its two strs per record */
    ck_assert_int_ge(rt_immortalize_heap(heap), NREC * 6);
    ps_snap_t *s = snapshot();
    size_t heap_pages = ps_snap_pages(s);
    size_t faults = copied_by_child(s, ACT_FINALIZE);
    printf("cow: finalize of a frozen immortal heap took %zu minor faults "
           "for %zu heap pages\n", faults, heap_pages);
    /* Immortal objects are neither cleared nor unlinked nor freed; what
     * faults is the child's own stack and libc, not the heap: bounded by
     * a constant, far below one fault per page. */
    ck_assert_uint_le(faults, heap_pages / 20);
    ps_snap_free(s);
}
END_TEST

/* 3.12's update_refs moves an immortal tracked object to the permanent
 * generation the first time a collection meets it; 3.11 collects it as
 * any other (its refcount is merely large). */
static void
check_immortal_to_permanent(int moves)
{
    rt_obj_t *l = rt_list_new(heap);
    rt_immortalize(l);
    size_t frozen = gc_get_freeze_count();
    ck_assert(gc_is_tracked(l));
    ck_assert_int_ge(gc_collect(0), 0);
    ck_assert_uint_eq(gc_get_freeze_count(), frozen + (size_t)moves);
    ck_assert_uint_eq(gc_gen_size(1), moves ? 0 : 1);
    gc_collect(2);
    ck_assert_uint_eq(gc_get_freeze_count(), frozen + (size_t)moves);
    assert_heap_sound();
}

static rt_heap_t *
heap_of(rt_python_t v)
{
    rt_opts_t o;
    rt_opts_default(&o);
    o.python = v;
    return rt_heap_new_opts(&o);
}
static void setup311(void) { heap = heap_of(RT_PY_311); }
static void setup312(void) { heap = heap_of(RT_PY_312); }

START_TEST(gc_immortal_stays_collected_311) { check_immortal_to_permanent(0); }
END_TEST
START_TEST(gc_immortal_moves_to_permanent_312) { check_immortal_to_permanent(1); }
END_TEST

int
main(void)
{
    Suite *s = suite_create("gc");
    TCase *tc = tcase_create("collector");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gc_collects_self_cycle);
    tcase_add_test(tc, gc_collects_ring_and_keeps_rooted);
    tcase_add_test(tc, gc_young_collection_spares_old_referents);
    tcase_add_test(tc, gc_threshold_triggers_gen0);
    tcase_add_test(tc, gc_threshold_zero_and_disable_stop_automatic);
    tcase_add_test(tc, gc_full_collection_waits_for_long_lived_pending);
    tcase_add_test(tc, gc_freeze_keeps_cycle_until_unfreeze);
    tcase_add_test(tc, gc_callbacks_bracket_each_collection);
    tcase_add_test(tc, gc_random_graphs_exact_unreachable);
    suite_add_tcase(s, tc);
    TCase *cow = tcase_create("cow");
    tcase_add_checked_fixture(cow, setup, teardown);
    tcase_set_timeout(cow, 120);
    tcase_add_test(cow, gc_cow_full_collection_copies_gc_pages);
    tcase_add_test(cow, gc_cow_frozen_collection_copies_almost_nothing);
    tcase_add_test(cow, gc_cow_reads_copy_pages_unless_immortal);
    tcase_add_test(cow, gc_cow_finalize_copies_nearly_everything);
    tcase_add_test(cow, gc_cow_finalize_of_immortal_heap_copies_little);
    suite_add_tcase(s, cow);
    tc = tcase_create("py311");
    tcase_add_checked_fixture(tc, setup311, teardown);
    tcase_add_test(tc, gc_immortal_stays_collected_311);
    suite_add_tcase(s, tc);
    tc = tcase_create("py312");
    tcase_add_checked_fixture(tc, setup312, teardown);
    tcase_add_test(tc, gc_immortal_moves_to_permanent_312);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
