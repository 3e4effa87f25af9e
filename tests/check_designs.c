/*
 * check_designs.c -- the runtime designs side by side (issue 13): every
 * collector layout (--gc-layout inline, side, bitmap) must find exactly
 * the garbage the others find.
 *
 * A differential test: the same random program (graphs of instances,
 * lists, dicts and tuples made, linked, dropped; explicit and automatic
 * collections of every generation; a freeze and an unfreeze;
 * rt_before_fork() at step 10, so that under split refcounts the counts of
 * everything alive then go to the process's table) runs on a fresh heap
 * per design, and after every step the test records what each
 * collection returned, the generation sizes, the collector's statistics
 * and the exact set of objects still alive (each node carries an id; a
 * heap walk, which visits every tracked object, garbage not yet collected
 * included, lists the ids still there).  The traces must be equal.  The
 * program avoids the one place the layouts may legitimately disagree
 * (which of two nested tuples of atoms a collection untracks first: see
 * gc_bitmap.c): every tuple here holds a list.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "object.h"
#include "support.h"

enum { STEPS = 40, BATCH = 150, MAXN = STEPS * BATCH, HELD = 400 };
#define ID0 100000                  /* ids are ints above the small ones */

typedef struct {
    long collected[STEPS];          /* gc_collect()'s result, or -2 */
    size_t gens[STEPS][4];          /* sizes of 0..2 and the permanent */
    size_t stats[STEPS][GC_NGENS];  /* collections per generation */
    size_t found[STEPS][GC_NGENS];  /* unreachable found, per generation */
    size_t alive[STEPS];            /* objects alive */
    uint8_t live[STEPS][MAXN / 8];  /* node ids still there */
} trace_t;

static rt_heap_t *heap;
static rt_obj_t *id_name, *cls;

static long
node_id(rt_obj_t *o)
{
    rt_obj_t *v = NULL;
    const rt_type_t *k = rt_kind(o);
    if (k == &rt_instance_type)
        v = rt_instance_getattr(o, id_name);
    else if (k == &rt_list_type && rt_list_len(o) > 0)
        v = rt_list_get(o, 0);
    else if (k == &rt_dict_type)
        v = rt_dict_get(o, id_name);
    else if (k == &rt_tuple_type && rt_tuple_len(o) > 0)
        v = rt_tuple_get(o, 0);
    if (v == NULL || rt_kind(v) != &rt_int_type)
        return -1;
    int64_t x = rt_int_value(v);
    return x >= ID0 && x < ID0 + MAXN ? (long)(x - ID0) : -1;
}

static void
on_obj(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    uint8_t *live = arg;
    (void)block;
    (void)len;
    long id = node_id(o);
    if (id >= 0)
        live[id / 8] |= (uint8_t)(1u << (id % 8));
}

/* Link a (a node) to b. */
static void
link(rt_obj_t *a, rt_obj_t *b, int k)
{
    char key[8];
    snprintf(key, sizeof key, "e%d", k & 3);
    const rt_type_t *t = rt_kind(a);
    if (t == &rt_list_type)
        ck_assert_int_eq(rt_list_append(a, b), 0);
    else if (t == &rt_dict_type)
        ck_assert_int_eq(rt_dict_set_str(heap, a, key, b), 0);
    else if (t == &rt_instance_type)
        ck_assert_int_eq(rt_instance_setattr_str(heap, a, key, b), 0);
    else                            /* a tuple: through its list */
        ck_assert_int_eq(rt_list_append(rt_tuple_get(a, 1), b), 0);
}

static rt_obj_t *
node_new(long id, unsigned *seed)
{
    rt_obj_t *idv = rt_int_new(heap, ID0 + id), *o;
    ck_assert_ptr_nonnull(idv);
    switch (rand_r(seed) % 4) {
    case 0:
        o = rt_instance_new(heap, cls);
        ck_assert_int_eq(rt_instance_setattr(o, id_name, idv), 0);
        break;
    case 1:
        o = rt_list_new(heap);
        ck_assert_int_eq(rt_list_append(o, idv), 0);
        break;
    case 2:
        o = rt_dict_new(heap);
        ck_assert_int_eq(rt_dict_set(o, id_name, idv), 0);
        break;
    default:
        o = rt_tuple_new(heap, 2);
        rt_incref(idv);
        rt_tuple_set_steal(o, 0, idv);
        rt_tuple_set_steal(o, 1, rt_list_new(heap));
        break;
    }
    ck_assert_ptr_nonnull(o);
    rt_decref(idv);
    return o;
}

static void
run(rt_gc_layout_t layout, rt_refcount_t rc, rt_python_t py, trace_t *tr)
{
    rt_opts_t opts;
    rt_opts_default(&opts);
    opts.python = py;
    opts.gc_layout = layout;
    opts.refcount = rc;
    heap = rt_heap_new_opts(&opts);
    ck_assert_ptr_nonnull(heap);
    ck_assert_int_eq(rt_heap_gc_layout(heap), layout);
    gc_set_threshold(120, 4, 4);
    id_name = rt_str_intern(heap, "id", 2);
    cls = rt_class_new(heap, "Node", NULL);
    ck_assert_ptr_nonnull(cls);
    rt_obj_t *mod = rt_module_new(heap, "graph");
    rt_obj_t *roots = rt_list_new(heap);
    ck_assert_int_eq(rt_dict_set_str(heap, rt_module_dict(mod), "roots",
                                     roots), 0);
    rt_obj_t *held[HELD] = { NULL };
    unsigned seed = 4242;
    long next = 0;
    memset(tr, 0, sizeof *tr);
    for (int step = 0; step < STEPS; step++) {
        rt_obj_t *batch[BATCH];
        for (int i = 0; i < BATCH; i++)
            batch[i] = node_new(next++, &seed);
        for (int e = 0; e < BATCH * 3 / 2; e++) {
            rt_obj_t *a = batch[rand_r(&seed) % BATCH];
            int inner = rand_r(&seed) % 4 || held[0] == NULL;
            rt_obj_t *b = inner ? batch[rand_r(&seed) % BATCH]
                                : held[rand_r(&seed) % HELD];
            if (b != NULL)
                link(a, b, e);
            if (inner && e % 2 == 0)
                link(b, a, e + 1);          /* cycles for the collector */
        }
        /* Keep some, drop the rest; every third batch is dropped whole
         * (its cycles are garbage). */
        for (int i = 0; i < BATCH; i++) {
            int slot = rand_r(&seed) % HELD;
            if (rand_r(&seed) % 5 == 0 && step % 3 != 1) {
                rt_xdecref(held[slot]);
                held[slot] = batch[i];
            } else {
                rt_decref(batch[i]);
            }
        }
        if (rand_r(&seed) % 8 == 0 && held[0] != NULL)  /* a module root */
            ck_assert_int_eq(rt_list_append(roots, held[0]), 0);
        if (step == 10)     /* split: what lives now counts in a table */
            ck_assert_int_ge(rt_before_fork(heap), 0);
        if (step == 15)
            gc_freeze();
        if (step == 25)
            gc_unfreeze();
        tr->collected[step] = rand_r(&seed) % 2
                              ? gc_collect(rand_r(&seed) % GC_NGENS) : -2;
        for (int g = 0; g < GC_NGENS; g++)
            tr->gens[step][g] = gc_gen_size(g);
        tr->gens[step][3] = gc_get_freeze_count();
        gc_genstats_t st[GC_NGENS];
        gc_get_stats(st);
        for (int g = 0; g < GC_NGENS; g++) {
            tr->stats[step][g] = st[g].collections;
            tr->found[step][g] = st[g].collected;
        }
        tr->alive[step] = rt_heap_objects(heap);
        ck_assert_int_ge(rt_heap_walk(heap, on_obj, tr->live[step]), 1);
        char msg[256];
        ck_assert_msg(gc_check_heap(msg, sizeof msg) == 0, "%s: %s",
                      rt_gc_layout_name(layout), msg);
    }
    for (int i = 0; i < HELD; i++)
        rt_xdecref(held[i]);
    rt_decref(roots);
    rt_decref(mod);
    rt_decref(cls);
    rt_decref(id_name);
    rt_heap_free(heap);
    heap = NULL;
}

static void
compare(const trace_t *a, const trace_t *b, const char *name)
{
    size_t collections = 0, found = 0;
    for (int s = 0; s < STEPS; s++) {
        ck_assert_msg(a->collected[s] == b->collected[s],
                      "%s, step %d: collected %ld vs inline's %ld", name, s,
                      b->collected[s], a->collected[s]);
        for (int g = 0; g < 4; g++)
            ck_assert_msg(a->gens[s][g] == b->gens[s][g],
                          "%s, step %d: generation %d holds %zu vs %zu",
                          name, s, g, b->gens[s][g], a->gens[s][g]);
        for (int g = 0; g < GC_NGENS; g++) {
            ck_assert_msg(a->stats[s][g] == b->stats[s][g],
                          "%s, step %d: %zu collections of %d vs %zu",
                          name, s, b->stats[s][g], g, a->stats[s][g]);
            ck_assert_msg(a->found[s][g] == b->found[s][g],
                          "%s, step %d: %zu found by collections of %d vs "
                          "%zu", name, s, b->found[s][g], g, a->found[s][g]);
        }
        ck_assert_msg(a->alive[s] == b->alive[s],
                      "%s, step %d: %zu objects alive vs %zu", name, s,
                      b->alive[s], a->alive[s]);
        ck_assert_msg(memcmp(a->live[s], b->live[s], sizeof a->live[s]) == 0,
                      "%s, step %d: not the same nodes alive", name, s);
    }
    for (int g = 0; g < GC_NGENS; g++) {
        collections += a->stats[STEPS - 1][g];
        found += a->found[STEPS - 1][g];
    }
    /* The program must exercise the collector, or the test proves
     * nothing: garbage found, automatic collections of every generation. */
    ck_assert_uint_gt(found, 1000);
    ck_assert_uint_gt(a->stats[STEPS - 1][GC_GEN_OLDEST], 2);
    printf("designs: %s = inline over %d steps: %zu collections, %zu "
           "objects found unreachable\n", name, STEPS,
           collections, found);
}

static void
differential(rt_python_t py)
{
    static trace_t t_inline, t_other;
    static const struct {
        rt_gc_layout_t layout;
        rt_refcount_t rc;
        const char *name;
    } designs[] = {
        { RT_GC_SIDE, RT_RC_INLINE, "side" },
        { RT_GC_BITMAP, RT_RC_INLINE, "bitmap" },
        { RT_GC_INLINE, RT_RC_SPLIT, "inline+split" },
        { RT_GC_SIDE, RT_RC_SPLIT, "side+split" },
        { RT_GC_BITMAP, RT_RC_SPLIT, "bitmap+split" },
    };
    run(RT_GC_INLINE, RT_RC_INLINE, py, &t_inline);
    for (size_t k = 0; k < sizeof designs / sizeof designs[0]; k++) {
        run(designs[k].layout, designs[k].rc, py, &t_other);
        compare(&t_inline, &t_other, designs[k].name);
    }
}

START_TEST(designs_layouts_find_the_same_garbage_312)
{
    differential(RT_PY_312);
}
END_TEST

START_TEST(designs_layouts_find_the_same_garbage_311)
{
    differential(RT_PY_311);
}
END_TEST

/* The control: a different program (another seed's worth of drops) must
 * give a different trace, or compare() could not fail. */
START_TEST(designs_trace_tells_programs_apart)
{
    static trace_t a, b;
    run(RT_GC_INLINE, RT_RC_INLINE, RT_PY_312, &a);
    run(RT_GC_INLINE, RT_RC_INLINE, RT_PY_312, &b);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);       /* deterministic */
    b.live[STEPS / 2][3] ^= 1;
    ck_assert(memcmp(a.live[STEPS / 2], b.live[STEPS / 2],
                     sizeof a.live[0]) != 0);
}
END_TEST

START_TEST(designs_layout_names)
{
    rt_gc_layout_t l;
    rt_refcount_t r;
    ck_assert_int_eq(rt_gc_layout_parse("bitmap", &l), 0);
    ck_assert_int_eq(l, RT_GC_BITMAP);
    ck_assert_str_eq(rt_gc_layout_name(RT_GC_SIDE), "side");
    ck_assert_int_eq(rt_gc_layout_parse("sidetable", &l), -1);
    ck_assert_int_eq(rt_gc_layout_parse(NULL, &l), -1);
    ck_assert_int_eq(rt_refcount_parse("split", &r), 0);
    ck_assert_int_eq(r, RT_RC_SPLIT);
    ck_assert_int_eq(rt_refcount_parse("biased", &r), -1);
    /* A bad mode fails the heap, never runs as the default. */
    rt_opts_t o;
    rt_opts_default(&o);
    o.gc_layout = (rt_gc_layout_t)7;
    ck_assert_ptr_null(rt_heap_new_opts(&o));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("designs");
    TCase *tc = tcase_create("layouts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, designs_layouts_find_the_same_garbage_312);
    tcase_add_test(tc, designs_layouts_find_the_same_garbage_311);
    tcase_add_test(tc, designs_trace_tells_programs_apart);
    tcase_add_test(tc, designs_layout_names);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
