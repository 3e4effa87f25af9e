/* check_object.c -- unit tests for runtime/object.c and the containers:
 * atoms, interning, list/dict/tuple semantics, refcounts, nested
 * deallocation, immortality (proved with a read-only page). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gc.h"
#include "mem.h"
#include "object.h"
#include "support.h"

static rt_heap_t *heap;
static void setup(void)    { heap = rt_heap_new(); ck_assert_ptr_nonnull(heap); }
static void teardown(void) { rt_heap_free(heap); heap = NULL; }

static rt_heap_t *
heap_of(rt_python_t v)
{
    rt_opts_t o;
    rt_opts_default(&o);
    o.python = v;
    return rt_heap_new_opts(&o);
}

static void setup311(void) { heap = heap_of(RT_PY_311); ck_assert_ptr_nonnull(heap); }
static void setup312(void) { heap = heap_of(RT_PY_312); ck_assert_ptr_nonnull(heap); }

/* The heap finalization is working on (tests' hooks run inside it). */
static rt_heap_t *
rt__heap_for_tests(void)
{
    return heap;
}

/* Blocks the allocator hands out now; 0 in the malloc-bypass build. */
static size_t
blocks_in_use(void)
{
    mem_stats_t st;
    mem_get_stats(&st);
    return st.blocks_in_use + st.large_in_use;
}

START_TEST(object_second_heap_refused)
{
    ck_assert_ptr_null(rt_heap_new());
}
END_TEST

START_TEST(object_small_ints_shared)
{
    rt_obj_t *a = rt_int_new(heap, 5), *b = rt_int_new(heap, 5);
    ck_assert_ptr_eq(a, b);
    rt_obj_t *c = rt_int_new(heap, -5), *d = rt_int_new(heap, -5);
    ck_assert_ptr_eq(c, d);
    rt_obj_t *e = rt_int_new(heap, 257), *f = rt_int_new(heap, 257);
    ck_assert_ptr_ne(e, f);
    ck_assert(rt_eq(e, f));
    ck_assert_int_eq(rt_int_value(e), 257);
    ck_assert_int_eq(rt_hash(e), rt_hash(f));
    rt_decref(a); rt_decref(b); rt_decref(c); rt_decref(d);
    rt_decref(e); rt_decref(f);
}
END_TEST

START_TEST(object_str_intern_and_hash)
{
    rt_obj_t *a = rt_str_intern(heap, "route", 5);
    rt_obj_t *b = rt_str_intern(heap, "route", 5);
    rt_obj_t *c = rt_str_from(heap, "route");
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, c);
    ck_assert(rt_eq(a, c));
    ck_assert_int_eq(rt_hash(a), rt_hash(c));
    ck_assert_int_ne(rt_hash(a), -1);
    ck_assert_str_eq(rt_str_data(c), "route");
    ck_assert_uint_eq(rt_str_len(c), 5);
    rt_obj_t *by = rt_bytes_new(heap, "\0\1\2", 3);
    ck_assert_uint_eq(rt_bytes_len(by), 3);
    ck_assert_int_eq(rt_bytes_data(by)[2], 2);
    rt_decref(a); rt_decref(b); rt_decref(c); rt_decref(by);
}
END_TEST

START_TEST(object_float_and_singletons)
{
    rt_obj_t *f = rt_float_new(heap, 2.5);
    ck_assert(rt_float_value(f) == 2.5);
    rt_obj_t *two = rt_float_new(heap, 2.0), *i2 = rt_int_new(heap, 2);
    ck_assert(rt_eq(two, i2));
    ck_assert_int_eq(rt_hash(two), rt_hash(i2));
    ck_assert_ptr_ne(rt_none(heap), rt_true(heap));
    ck_assert_str_eq(rt_type_name(rt_none(heap)), "NoneType");
    rt_decref(f); rt_decref(two); rt_decref(i2);
}
END_TEST

START_TEST(object_list_overallocation_as_cpython)
{
    /* CPython 3.9+: allocated goes 0, 4, 8, 16, 24, 32, 40, 52, 64, 76 */
    static const size_t want[] = { 4, 8, 16, 24, 32, 40, 52, 64, 76 };
    rt_obj_t *l = rt_list_new(heap);
    size_t k = 0, last = 0;
    for (int i = 0; i < 70; i++) {
        ck_assert_int_eq(rt_list_append(l, rt_none(heap)), 0);
        if (rt_list_allocated(l) != last) {
            last = rt_list_allocated(l);
            ck_assert_uint_lt(k, sizeof(want) / sizeof(want[0]));
            ck_assert_uint_eq(last, want[k]);
            k++;
        }
    }
    ck_assert_uint_eq(k, 9);
    rt_decref(l);
}
END_TEST

START_TEST(object_list_semantics)
{
    rt_obj_t *l = rt_list_new(heap);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(rt_list_append_steal(l, rt_int_new(heap, i)), 0);
    rt_obj_t *x = rt_int_new(heap, 1000);   /* not a cached small int */
    ck_assert_int_eq(rt_list_insert(l, 0, x), 0);        /* [100,0..9] */
    ck_assert_int_eq(rt_list_insert(l, 99, x), 0);       /* clamps: end */
    ck_assert_uint_eq(rt_list_len(l), 12);
    ck_assert_int_eq(rt_int_value(rt_list_get(l, 0)), 1000);
    ck_assert_int_eq(rt_int_value(rt_list_get(l, 11)), 1000);
    ck_assert_int_eq(rt_list_del(l, 0), 0);
    ck_assert_int_eq(rt_list_del(l, 50), -1);
    ck_assert_int_eq(rt_list_set(l, 3, x), 0);
    ck_assert_int_eq(rt_int_value(rt_list_get(l, 3)), 1000);
    ck_assert_int_eq(rt_list_set(l, 30, x), -1);
    ck_assert_ptr_null(rt_list_get(l, 11));
    rt_obj_t *p = rt_list_pop(l);
    ck_assert_ptr_eq(p, x);
    rt_decref(p);
    ck_assert_uint_eq(rt_list_len(l), 10);
    for (size_t i = 0; i < 10; i++)
        ck_assert_int_eq(rt_int_value(rt_list_get(l, i)),
                         i == 3 ? 1000 : (int64_t)i);
    ck_assert_int_eq(rt_refcnt(x), 2);       /* ours + the list's */
    /* Shrinking: popping to 0 releases the item array. */
    while (rt_list_len(l) > 0) {
        p = rt_list_pop(l);
        rt_decref(p);
    }
    ck_assert_uint_eq(rt_list_allocated(l), 0);
    ck_assert_ptr_null(rt_list_pop(l));
    ck_assert_int_eq(rt_refcnt(x), 1);
    rt_decref(x);
    rt_decref(l);
}
END_TEST

START_TEST(object_dict_order_delete_resize)
{
    rt_obj_t *d = rt_dict_new(heap);
    ck_assert_uint_eq(rt_dict_keys_size(d), 0);  /* {}: no table yet */
    for (int i = 0; i < 1000; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "k%d", i);
        ck_assert_int_eq(rt_dict_set_steal(d, rt_str_from(heap, buf),
                                           rt_int_new(heap, i)), 0);
        /* CPython 3.11: 8 slots hold 5, then grow to used*3 rounded up */
        if (i == 0)
            ck_assert_uint_eq(rt_dict_keys_size(d), 8);
        if (i == 4)
            ck_assert_uint_eq(rt_dict_keys_size(d), 8);
        if (i == 5)
            ck_assert_uint_eq(rt_dict_keys_size(d), 16);
        if (i == 10)
            ck_assert_uint_eq(rt_dict_keys_size(d), 32);
    }
    ck_assert_uint_eq(rt_dict_len(d), 1000);
    /* Overwrite keeps position. */
    rt_obj_t *k7 = rt_str_from(heap, "k7");
    ck_assert_int_eq(rt_dict_set_steal(d, rt_str_from(heap, "k7"),
                                       rt_int_new(heap, -7)), 0);
    ck_assert_int_eq(rt_int_value(rt_dict_get(d, k7)), -7);
    /* Delete the even keys. */
    for (int i = 0; i < 1000; i += 2) {
        char buf[16];
        snprintf(buf, sizeof buf, "k%d", i);
        rt_obj_t *k = rt_str_from(heap, buf);
        ck_assert_int_eq(rt_dict_del(d, k), 0);
        ck_assert_int_eq(rt_dict_del(d, k), -1);
        rt_decref(k);
    }
    ck_assert_uint_eq(rt_dict_len(d), 500);
    size_t pos = 0, n = 0;
    rt_obj_t *k, *v;
    while (rt_dict_next(d, &pos, &k, &v)) {
        int want = (int)(2 * n + 1);
        ck_assert_int_eq(rt_int_value(v), want == 7 ? -7 : want);
        n++;
    }
    ck_assert_uint_eq(n, 500);
    /* Re-insert after deletes: goes to the end, order kept after resize. */
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(rt_dict_set_steal(d, rt_int_new(heap, 10000 + i),
                                           rt_int_new(heap, i)), 0);
    pos = n = 0;
    while (rt_dict_next(d, &pos, &k, &v)) {
        if (n >= 500)
            ck_assert_int_eq(rt_int_value(k), 10000 + (int64_t)(n - 500));
        n++;
    }
    ck_assert_uint_eq(n, 2500);
    ck_assert_ptr_null(rt_dict_get_str(heap, d, "k0"));
    ck_assert_ptr_nonnull(rt_dict_get_str(heap, d, "k1"));
    /* Unhashable keys are refused. */
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_int_eq(rt_dict_set(d, l, l), -1);
    rt_dict_clear(d);
    ck_assert_uint_eq(rt_dict_len(d), 0);
    rt_decref(l); rt_decref(k7); rt_decref(d);
}
END_TEST

START_TEST(object_dict_tracking_rules)
{
    rt_obj_t *d = rt_dict_new(heap);
    ck_assert(!gc_is_tracked(d));                         /* {} */
    rt_dict_set_str(heap, d, "a", rt_none(heap));
    rt_obj_t *one = rt_int_new(heap, 1);
    rt_dict_set_str(heap, d, "b", one);
    ck_assert(!gc_is_tracked(d));                         /* atoms only */
    rt_obj_t *t = rt_tuple_new(heap, 0);
    ck_assert(gc_is_tracked(t));                          /* until a gc */
    rt_obj_t *l = rt_list_new(heap);
    ck_assert(gc_is_tracked(l));
    rt_dict_set_str(heap, d, "c", l);
    ck_assert(gc_is_tracked(d));                          /* {'c': []} */
    rt_decref(l); rt_decref(t); rt_decref(one); rt_decref(d);
}
END_TEST

START_TEST(object_tuple_semantics)
{
    rt_obj_t *t = rt_tuple_new(heap, 3);
    rt_tuple_set_steal(t, 0, rt_int_new(heap, 1));
    rt_tuple_set_steal(t, 1, rt_str_from(heap, "x"));
    rt_tuple_set_steal(t, 2, rt_float_new(heap, 0.5));
    rt_obj_t *u = rt_tuple_new(heap, 3);
    rt_tuple_set_steal(u, 0, rt_int_new(heap, 1));
    rt_tuple_set_steal(u, 1, rt_str_from(heap, "x"));
    rt_tuple_set_steal(u, 2, rt_float_new(heap, 0.5));
    ck_assert(rt_eq(t, u));
    ck_assert_int_eq(rt_hash(t), rt_hash(u));
    ck_assert_uint_eq(rt_tuple_len(t), 3);
    /* tuples are hashable dict keys */
    rt_obj_t *d = rt_dict_new(heap);
    ck_assert_int_eq(rt_dict_set(d, t, rt_none(heap)), 0);
    ck_assert_ptr_eq(rt_dict_get(d, u), rt_none(heap));
    rt_decref(d); rt_decref(t); rt_decref(u);
}
END_TEST

START_TEST(object_classes_instances_functions)
{
    rt_obj_t *m = rt_module_new(heap, "app.models");
    ck_assert_ptr_eq(rt_dict_get_str(heap, rt_heap_modules(heap),
                                     "app.models"), m);
    ck_assert_uint_eq(rt_dict_len(rt_module_dict(m)), 5);  /* __name__,
                                   __doc__, __package__, __loader__, __spec__ */
    rt_obj_t *cls = rt_class_new(heap, "User", NULL);
    ck_assert_str_eq(rt_str_data(rt_class_name(cls)), "User");
    /* type() puts __dict__, __weakref__ and __doc__ in a root class. */
    ck_assert_uint_eq(rt_dict_len(rt_class_dict(cls)), 3);
    ck_assert_uint_eq(rt_tuple_len(rt_class_mro(cls)), 2);
    ck_assert_ptr_eq(rt_tuple_get(rt_class_mro(cls), 1),
                     rt_object_class(heap));
    rt_obj_t *blob = rt_bytes_new(heap, "\x64\x00\x53\x00", 4);
    rt_obj_t *nm = rt_str_intern(heap, "save", 4);
    rt_obj_t *code = rt_code_new(heap, nm, blob);
    ck_assert_ptr_nonnull(code);
    ck_assert_ptr_eq(rt_tuple_get(rt_code_consts(code), 0), blob);
    rt_obj_t *f = rt_function_new(heap, nm, code, rt_module_dict(m));
    ck_assert_ptr_eq(rt_function_code(f), code);
    ck_assert_ptr_eq(rt_function_globals(f), rt_module_dict(m));
    rt_dict_set_str(heap, rt_class_dict(cls), "save", f);
    size_t objs = rt_heap_objects(heap);
    rt_obj_t *inst = rt_instance_new(heap, cls);
    ck_assert_uint_eq(rt_heap_objects(heap), objs + 1);   /* no dict */
    ck_assert(!rt_instance_has_dict(inst));
    ck_assert_ptr_eq(rt_instance_class(inst), cls);
    ck_assert_int_eq(rt_instance_setattr_str(heap, inst, "name", nm), 0);
    ck_assert_ptr_eq(rt_instance_getattr(inst, nm), NULL);
    rt_obj_t *key = rt_str_intern(heap, "name", 4);
    ck_assert_ptr_eq(rt_instance_getattr(inst, key), nm);
    ck_assert(!rt_instance_has_dict(inst));
    rt_obj_t *d = rt_instance_dict(inst);     /* made on demand */
    ck_assert_ptr_nonnull(d);
    ck_assert(rt_instance_has_dict(inst));
    ck_assert_uint_eq(rt_dict_len(d), 1);
    ck_assert_ptr_eq(rt_dict_get(d, key), nm);
    ck_assert_ptr_eq(rt_instance_getattr(inst, key), nm);
    ck_assert_ptr_eq(rt_slots_new(heap, cls), NULL);      /* no slots */
    rt_obj_t *names = rt_tuple_new(heap, 2);
    rt_tuple_set_steal(names, 0, rt_str_intern(heap, "a", 1));
    rt_tuple_set_steal(names, 1, rt_str_intern(heap, "b", 1));
    rt_obj_t *scls = rt_class_new_slots(heap, "P", NULL, names);
    ck_assert_ptr_nonnull(scls);
    ck_assert_ptr_eq(rt_instance_new(heap, scls), NULL);  /* no dict */
    rt_obj_t *s = rt_slots_new(heap, scls);
    ck_assert_uint_eq(rt_slots_len(s), 2);
    ck_assert_ptr_null(rt_slots_get(s, 0));
    ck_assert_int_eq(rt_slots_set(s, 1, nm), 0);
    ck_assert_int_eq(rt_slots_set(s, 2, nm), -1);
    ck_assert_ptr_eq(rt_slots_get(s, 1), nm);
    ck_assert_str_eq(rt_type_name(s), "object(__slots__)");
    ck_assert_str_eq(rt_type_name(inst), "object");
    intptr_t c0 = rt_refcnt(cls);
    rt_decref(inst);
    ck_assert_int_eq(rt_refcnt(cls), c0 - 1);
    rt_decref(s);
    rt_decref(scls); rt_decref(names); rt_decref(key);
    rt_decref(f); rt_decref(code); rt_decref(nm); rt_decref(blob);
    rt_decref(cls);
    rt_decref(m);
}
END_TEST

/* Visiting: count the references traverse reports. */
static int
count_visit(rt_obj_t *o, void *arg)
{
    (void)o;
    (*(int *)arg)++;
    return 0;
}

START_TEST(object_traverse_visits_every_reference)
{
    rt_obj_t *l = rt_list_new(heap);
    for (int i = 0; i < 7; i++)
        rt_list_append(l, rt_none(heap));
    int n = 0;
    l->type->traverse(l, count_visit, &n);
    ck_assert_int_eq(n, 7);
    rt_obj_t *d = rt_dict_new(heap);
    rt_dict_set_str(heap, d, "a", l);
    rt_dict_set_str(heap, d, "b", l);
    n = 0;
    d->type->traverse(d, count_visit, &n);
    ck_assert_int_eq(n, 2);     /* str keys hold nothing: values only, as
                                   CPython 3.11's unicode-keyed dicts */
    rt_obj_t *k = rt_int_new(heap, 7);
    rt_dict_set(d, k, l);
    rt_decref(k);
    n = 0;
    d->type->traverse(d, count_visit, &n);
    ck_assert_int_eq(n, 6);                  /* general table: keys too */
    rt_obj_t *names = rt_tuple_new(heap, 3);
    for (int i = 0; i < 3; i++)
        rt_tuple_set_steal(names, (size_t)i, rt_str_intern(heap, "abc" + i,
                                                          1));
    rt_obj_t *cls = rt_class_new_slots(heap, "C", NULL, names);
    rt_obj_t *s = rt_slots_new(heap, cls);
    rt_slots_set(s, 0, l);
    n = 0;
    s->type->traverse(s, count_visit, &n);
    ck_assert_int_eq(n, 2);                  /* class + one slot */
    rt_decref(s); rt_decref(cls); rt_decref(names);
    rt_decref(d); rt_decref(l);
}
END_TEST

START_TEST(object_refcount_zero_frees_exact_blocks)
{
    size_t objs0 = rt_heap_objects(heap), blocks0 = blocks_in_use();
    rt_obj_t *d = rt_dict_new(heap);
    for (int i = 0; i < 100; i++) {
        rt_obj_t *l = rt_list_new(heap);
        rt_list_append_steal(l, rt_str_from(heap, "payload"));
        rt_list_append_steal(l, rt_int_new(heap, 1000 + i));
        rt_dict_set_steal(d, rt_int_new(heap, 5000 + i), l);
    }
    /* 1 dict + 100 * (list, str, int, key int) */
    ck_assert_uint_eq(rt_heap_objects(heap), objs0 + 1 + 400);
    rt_decref(d);
    ck_assert_uint_eq(rt_heap_objects(heap), objs0);
    ck_assert_uint_eq(blocks_in_use(), blocks0);
}
END_TEST

START_TEST(object_nested_dealloc_no_stack_overflow)
{
    rt_decref(rt_str_intern(heap, "next", 4));  /* interned before counting */
    size_t objs0 = rt_heap_objects(heap);
    rt_obj_t *top = rt_list_new(heap), *x = top;
    gc_disable();
    for (int i = 0; i < 1000000; i++) {
        rt_obj_t *y = rt_list_new(heap);
        rt_list_append_steal(x, y);
        x = y;
    }
    rt_obj_t *dtop = rt_dict_new(heap), *dx = dtop;
    for (int i = 0; i < 300000; i++) {
        rt_obj_t *y = (i & 1) ? rt_dict_new(heap) : rt_tuple_new(heap, 1);
        if (dx->type == &rt_dict_type)
            rt_dict_set_str(heap, dx, "next", y);
        else
            rt_tuple_set_steal(dx, 0, (rt_incref(y), y));
        rt_decref(y);
        dx = y;
    }
    ck_assert_uint_eq(rt_heap_objects(heap), objs0 + 1300002);
    rt_decref(top);
    rt_decref(dtop);
    ck_assert_uint_eq(rt_heap_objects(heap), objs0);
}
END_TEST

START_TEST(object_immortal_refcount_unchanged)
{
    rt_obj_t *s = rt_str_from(heap, "forever");
    rt_immortalize(s);
    ck_assert(rt_is_immortal(s));
    for (int i = 0; i < 1000; i++)
        rt_decref(s);                        /* would free a mortal one */
    ck_assert_int_eq(s->refcnt, RT_IMMORTAL_REFCNT);
    rt_incref(s);
    ck_assert_int_eq(s->refcnt, RT_IMMORTAL_REFCNT);
}
END_TEST

/* The proof: the object's page is read-only; incref/decref must not
 * write it.  The mortal control below shows the same loop does fault. */
static void
incref_decref_readonly(int immortal)
{
    long pg = sysconf(_SC_PAGESIZE);
    rt_obj_t *o = rt_str_from(heap, "shared");
    if (immortal)
        rt_immortalize(o);
    uintptr_t page = (uintptr_t)o & ~(uintptr_t)(pg - 1);
    /* The header may straddle a page boundary: protect both pages. */
    size_t len = ((uintptr_t)(o + 1) - page + (size_t)pg - 1)
                 & ~(size_t)(pg - 1);
    ck_assert_int_eq(mprotect((void *)page, len, PROT_READ), 0);
    for (int i = 0; i < 1000000; i++) {
        rt_incref(o);
        __asm__ volatile("" ::: "memory");  /* keep the pair from folding */
        rt_decref(o);
    }
    ck_assert_int_eq(mprotect((void *)page, len, PROT_READ | PROT_WRITE),
                     0);
}

START_TEST(object_immortal_readonly_page_no_fault)
{
    incref_decref_readonly(1);
}
END_TEST

START_TEST(object_mortal_readonly_page_faults)
{
    signal(SIGSEGV, SIG_DFL);       /* not the sanitizer's handler */
    incref_decref_readonly(0);
}
END_TEST

typedef struct { const rt_obj_t *last; long objects, immortal; } census_t;

static void
count_immortal(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    census_t *c = arg;
    (void)block;
    (void)len;
    if (o == c->last)           /* its item array or key table */
        return;
    c->last = o;
    c->objects++;
    c->immortal += rt_is_immortal(o);
}

START_TEST(object_immortalize_heap_marks_reachable)
{
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *l = rt_list_new(heap);
    rt_obj_t *t = rt_tuple_new(heap, 1);
    rt_tuple_set_steal(t, 0, rt_str_from(heap, "deep"));
    rt_list_append(l, t);
    rt_dict_set_str(heap, rt_module_dict(m), "things", l);
    rt_obj_t *deep = rt_tuple_get(t, 0);
    /* Everything is reachable from a root: each object once, but those
     * already immortal (3.12's interned strings). */
    census_t c = { NULL, 0, 0 };
    ck_assert_int_ge(rt_heap_walk(heap, count_immortal, &c), 0);
    ck_assert_int_eq(c.objects, (long)rt_heap_objects(heap));
    ck_assert_int_eq(rt_immortalize_heap(heap), c.objects - c.immortal);
    ck_assert(rt_is_immortal(l));
    ck_assert(rt_is_immortal(t));
    ck_assert(rt_is_immortal(deep));
    ck_assert(rt_is_immortal(m));
    ck_assert(rt_is_immortal(rt_none(heap)));
    /* a second pass finds nothing new */
    ck_assert_uint_eq(rt_immortalize_heap(heap), 0);
    rt_decref(t); rt_decref(l); rt_decref(m);
}
END_TEST

/* A module "app" holding n self-referencing lists (cycles). */
static size_t
module_of_cycles(int n)
{
    size_t objs0 = rt_heap_objects(heap);
    rt_obj_t *m = rt_module_new(heap, "app");
    for (int i = 0; i < n; i++) {
        rt_obj_t *l = rt_list_new(heap);
        rt_list_append(l, l);
        char buf[16];
        snprintf(buf, sizeof buf, "n%d", i);
        rt_dict_set_str(heap, rt_module_dict(m), buf, l);
        rt_decref(l);
    }
    rt_decref(m);
    /* the module, its dict, its name and the five names its dict starts
     * with (__name__, __doc__, __package__, __loader__, __spec__:
     * interned); n lists and their n keys */
    size_t objs = rt_heap_objects(heap);
    ck_assert_uint_eq(objs, objs0 + 8 + 2 * (size_t)n);
    return objs;
}

/* Finalize the heap (0 expected) and start a new one; *outer: the
 * call's time seen from outside, in ms. */
static void
finalize_now(rt_teardown_t *st, double *outer)
{
    struct timespec t0, t1;
    memset(st, 0, sizeof *st);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(rt_finalize(heap, st), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (outer)
        *outer = (double)(t1.tv_sec - t0.tv_sec) * 1e3
                 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    heap = rt_heap_new();                    /* for teardown() */
}

/* Py_Finalize collects: every cycle goes, in four full collections
 * (3.11 heap: its interned strings are mortal and freed too). */
START_TEST(object_finalize_collects_cycles)
{
    size_t objs = module_of_cycles(1000);
    rt_teardown_t st;
    double outer;
    finalize_now(&st, &outer);
    ck_assert_uint_eq(st.left, 0);
    ck_assert_uint_eq(st.collections, 4);
    ck_assert_uint_ge(st.collected, 1000);
    ck_assert_uint_eq(st.deallocated, objs);  /* every object, once */
    ck_assert_msg(st.wall_ms > 0 && st.wall_ms <= outer,
                  "wall_ms %.6f, the call took %.6f ms", st.wall_ms, outer);
}
END_TEST

/* ... but never visits the permanent generation: frozen cycles leak
 * (CPython's finalization leaves them too); acyclic objects still go by
 * refcount.  Fails with a teardown that clears the frozen objects. */
START_TEST(object_finalize_leaks_frozen_cycles)
{
    module_of_cycles(1000);
    gc_freeze();
    rt_teardown_t st;
    finalize_now(&st, NULL);
    ck_assert_uint_eq(st.left, 1000);        /* the lists, nothing else */
    ck_assert_uint_eq(st.collections, 4);
    ck_assert_uint_eq(st.collected, 0);
}
END_TEST

/* gc.disable() skips Py_FinalizeEx's gc.collect(), not finalize_modules'
 * or interpreter_clear's (_PyGC_CollectNoFail). */
START_TEST(object_finalize_collects_with_gc_disabled)
{
    module_of_cycles(10);
    gc_disable();
    rt_teardown_t st;
    finalize_now(&st, NULL);
    ck_assert_uint_eq(st.collections, 3);
    ck_assert_uint_eq(st.left, 0);
}
END_TEST

/* The module dicts of an immortal heap are emptied (values set to None:
 * CPython writes the dict entries) while the objects stay unwritten.
 * Fails with a teardown that skips immortal module dicts. */
static rt_obj_t *kept_dict, *kept_list;
static int seen_cleared = -1;

static void
check_dict_cleared(void *arg)
{
    (void)arg;
    rt_heap_t *h = rt__heap_for_tests();
    seen_cleared = rt_dict_get_str(h, kept_dict, "l") == rt_none(h)
                   && rt_is_immortal(kept_list);
}

START_TEST(object_finalize_clears_immortal_module_dicts)
{
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *l = rt_list_new(heap);
    rt_dict_set_str(heap, rt_module_dict(m), "l", l);
    kept_dict = rt_module_dict(m);
    kept_list = l;
    rt_decref(l);
    rt_decref(m);
    rt_immortalize_heap(heap);
    rt_teardown_t st;
    memset(&st, 0, sizeof st);
    st.before_release = check_dict_cleared;
    rt_finalize(heap, &st);
    heap = rt_heap_new();
    ck_assert_int_eq(seen_cleared, 1);
}
END_TEST

/* The finalize timer leaves out the allocator's release hook (a worker's
 * pagemap reads) and the final unmapping.  Fails when either is timed. */
static void
slow_hook(void *arg, uintptr_t start, uintptr_t end)
{
    (void)arg; (void)start; (void)end;
    struct timespec ts = { 0, 60 * 1000000L };
    nanosleep(&ts, NULL);
}

START_TEST(object_finalize_timer_excludes_release)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("RT_MALLOC_BYPASS (no arenas)");
#endif
    module_of_cycles(30000);                 /* several arenas, freed */
    mem_set_release_hook(slow_hook, NULL);
    rt_teardown_t st;
    finalize_now(&st, NULL);
    mem_set_release_hook(NULL, NULL);
    ck_assert_msg(st.wall_ms < 60.0, "finalize timed %.1f ms", st.wall_ms);
}
END_TEST

/*
 * The proof that finalization leaves immortal objects unwritten: in a
 * forked child every arena page of the heap is made read-only, then
 * rt_finalize() runs; a write kills the child with SIGSEGV.  The pages go
 * back to read-write in before_release, where the objects are done with
 * and only the arenas' release is left.  The control, the same heap not
 * immortal, must be killed.  What CPython's finalization writes whatever
 * the objects' refcounts (the module objects, whose weak list it sets,
 * the module dicts, whose values it sets to None, sys.modules and the
 * interned table, which it empties) stays writable: the pages of every
 * module and of every dict but the test's own.
 */
enum { NEXEMPT = 64 };
static uintptr_t exempt[NEXEMPT][2];
static int nexempt;
static rt_obj_t *const *own_dicts;
static size_t nown_dicts;

static void
find_exempt(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    (void)arg;
    if (rt_kind(o) != &rt_module_type && rt_kind(o) != &rt_dict_type)
        return;
    for (size_t i = 0; i < nown_dicts; i++)
        if (own_dicts[i] == o)
            return;
    if (nexempt == NEXEMPT)
        _exit(6);
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    exempt[nexempt][0] = (uintptr_t)block & ~(pg - 1);
    exempt[nexempt][1] = ((uintptr_t)block + (len ? len : 1) + pg - 1)
                         & ~(pg - 1);
    nexempt++;
}
static void
protect_arenas(int prot)
{
    static mem_range_t r[256];
    long n = mem_ranges(r, 256);

    if (n < 1 || n > 256)
        _exit(4);
    for (long i = 0; i < n; i++)
        for (uintptr_t a = r[i].start; a < r[i].end; a += MEM_ARENA_SIZE)
            if (mem_in_arena((void *)a)
                && mprotect((void *)a, MEM_ARENA_SIZE, prot) != 0)
                _exit(5);
}

static void
unprotect_arenas(void *arg)
{
    (void)arg;
    protect_arenas(PROT_READ | PROT_WRITE);
}

/* Finalize in a child under read-only arenas: its wait status; the
 * teardown's figures in *st when it exited. */
static int
finalize_read_only(rt_teardown_t *st)
{
    int fds[2], status;

    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rt_teardown_t t;
        memset(&t, 0, sizeof t);
        t.before_release = unprotect_arenas;
        signal(SIGSEGV, SIG_DFL);
        nexempt = 0;
        if (rt_heap_walk(heap, find_exempt, NULL) < 0)
            _exit(7);
        protect_arenas(PROT_READ);
        for (int i = 0; i < nexempt; i++)
            if (mem_in_arena((void *)exempt[i][0])
                && mprotect((void *)exempt[i][0], exempt[i][1]
                            - exempt[i][0], PROT_READ | PROT_WRITE) != 0)
                _exit(5);
        if (rt_finalize(heap, &t) != 0)
            _exit(3);
        if (write(fds[1], &t, sizeof t) != (ssize_t)sizeof t)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        ck_assert_int_eq(read(fds[0], st, sizeof *st), (ssize_t)sizeof *st);
    close(fds[0]);
    return status;
}

START_TEST(object_finalize_leaves_immortals_unwritten)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("objects share malloc's pages under RT_MALLOC_BYPASS: the "
            "read-only proof needs the arenas");
#endif
    static rt_obj_t *dicts[100];
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *l = rt_list_new(heap);
    own_dicts = dicts;
    nown_dicts = 100;
    for (int i = 0; i < 100; i++) {
        rt_obj_t *d = dicts[i] = rt_dict_new(heap);
        rt_obj_t *v = rt_int_new(heap, 1000 + i);
        rt_dict_set_str(heap, d, "k", v);
        rt_decref(v);
        rt_dict_set_str(heap, d, "self", d);    /* a cycle */
        rt_list_append_steal(l, d);
    }
    rt_dict_set_str(heap, rt_module_dict(m), "l", l);
    rt_decref(l);
    rt_decref(m);
    gc_freeze();                /* the freeze+immortal policy */
    rt_teardown_t st;

    /* Control: mortal, the teardown writes the heap and is killed. */
    int status = finalize_read_only(&st);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "the mortal heap's teardown was not stopped by a "
                  "read-only page (status %#x)", status);

    size_t objs = rt_heap_objects(heap);
    ck_assert_int_eq(rt_immortalize_heap(heap), (long)objs);
    status = finalize_read_only(&st);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the immortal heap's teardown wrote a read-only page "
                  "(status %#x)", status);
    ck_assert_uint_eq(st.deallocated, 0);
    ck_assert_uint_eq(st.left, objs);       /* all left to the munmap */
}
END_TEST

/*
 * Out of memory in rt_immortalize_heap() (its stack) leaves the heap only
 * partly immortal: it must say so (-1), never return a count as if it had
 * finished.  Every failure point in turn.  The heap: a module whose list
 * holds NSTRS strs, so the stack grows while objects are being marked.
 */
enum { NSTRS = 5000 };

START_TEST(object_immortalize_heap_out_of_memory)
{
    static rt_obj_t *strs[NSTRS];
    rt_obj_t *m = rt_module_new(heap, "app");
    rt_obj_t *all = rt_list_new(heap);
    long n, r = -1;
    int failures = 0, partial = 0;

    for (int i = 0; i < NSTRS; i++) {
        strs[i] = rt_str_from(heap, "payload");
        rt_list_append_steal(all, strs[i]);
    }
    rt_dict_set_str(heap, rt_module_dict(m), "all", all);
    rt_decref(all);
    size_t objs = rt_heap_objects(heap);
    for (n = 1; n < 100; n++) {
        mem_fail_after(n);
        r = rt_immortalize_heap(heap);
        mem_fail_after(0);
        if (r >= 0)
            break;
        ck_assert_int_eq(r, -1);
        failures++;
        /* some objects marked, not all: what the -1 is there to say */
        census_t c = { NULL, 0, 0 };
        ck_assert_int_eq(rt_heap_walk(heap, count_immortal, &c), c.objects);
        partial += c.immortal > 0 && c.immortal < c.objects;
    }
    ck_assert_int_ge(r, 0);
    ck_assert_int_ge(failures, 2);      /* the stack grows more than once */
    ck_assert_int_ge(partial, 1);
    ck_assert_uint_le((size_t)r, objs);
    /* The pass that had memory finished the job: an object is marked only
     * once everything it refers to is on the stack. */
    ck_assert_int_eq(rt_immortalize_heap(heap), 0);
    for (int i = 0; i < NSTRS; i++)
        ck_assert(rt_is_immortal(strs[i]));
    rt_decref(m);
}
END_TEST

/* Out of memory in finalization (the list of modules whose globals it
 * clears) leaves work undone: rt_finalize() must return -1, not the
 * figures of a teardown that did not happen.  The first failure points in
 * turn; a run that had memory ends as one without fault injection. */
static rt_obj_t *
module_of_frozen_cycles(void)
{
    rt_obj_t *m = rt_module_new(heap, "app");
    for (int i = 0; i < 100; i++) {
        rt_obj_t *l = rt_list_new(heap);
        char buf[16];
        rt_list_append(l, l);
        snprintf(buf, sizeof buf, "n%d", i);
        rt_dict_set_str(heap, rt_module_dict(m), buf, l);
        rt_decref(l);
    }
    rt_decref(m);
    gc_freeze();                /* the lists leak: no collection sees them */
    return m;
}

START_TEST(object_finalize_out_of_memory)
{
    int failures = 0;
    rt_teardown_t ok;

    /* the finalize tcase's heaps are 3.11's: its interned strings go */
    module_of_frozen_cycles();
    memset(&ok, 0, sizeof ok);
    ck_assert_int_eq(rt_finalize(heap, &ok), 0);
    heap = heap_of(RT_PY_311);
    ck_assert_uint_eq(ok.left, 100);        /* the frozen lists */
    for (long n = 1; n <= 10; n++) {
        module_of_frozen_cycles();
        rt_teardown_t st;
        memset(&st, 0, sizeof st);
        mem_fail_after(n);
        int rc = rt_finalize(heap, &st);
        mem_fail_after(0);
        heap = heap_of(RT_PY_311);  /* the old one is released either way */
        ck_assert_ptr_nonnull(heap);
        ck_assert_msg(rc == 0 || rc == -1, "n=%ld: %d", n, rc);
        if (rc == 0) {
            ck_assert_uint_eq(st.left, ok.left);
            ck_assert_uint_eq(st.deallocated, ok.deallocated);
            ck_assert_uint_eq(st.collections, ok.collections);
        } else {
            failures++;
        }
    }
    ck_assert_int_ge(failures, 1);
}
END_TEST

/* ---- object sizes: CPython's, per version ------------------------------
 * Expected bytes are CPython's allocations (tracemalloc and sys.getsizeof
 * on 3.11.7 and 3.12.1, 64-bit) rounded to pymalloc's 16-byte classes, or
 * plus glibc's 16 bytes above 512: the blocks the model must allocate. */

typedef struct {
    rt_obj_t *target;
    size_t bytes[3];            /* own block, then its separate parts */
    int n;
} blocks_t;

static void
on_block(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    blocks_t *b = arg;
    (void)block;
    if (o == b->target && b->n < 3)
        b->bytes[b->n++] = len;
}

/* Bytes of o's blocks (its own first); o must be reachable: it is put in
 * the module "probe". */
static size_t
block_bytes(rt_obj_t *o, int part)
{
    rt_obj_t *m = rt_dict_get_str(heap, rt_heap_modules(heap), "probe");
    if (m == NULL) {
        m = rt_module_new(heap, "probe");
        rt_decref(m);
    }
    rt_dict_set_str(heap, rt_module_dict(m), "o", o);
    blocks_t b = { o, { 0, 0, 0 }, 0 };
    ck_assert_int_ge(rt_heap_walk(heap, on_block, &b), 1);
    return part < b.n ? b.bytes[part] : 0;
}

/* The block a GC-able object of CPython's size raw (its 16-byte gc head
 * included) takes under the layout in force: the head's 16 bytes give way
 * to the layout's (8 under side, 0 under bitmap), rounded to 16. */
static size_t
gcb(size_t raw)
{
    static const size_t hdr[] = { 16, 8, 0 };
    return (raw - 16 + hdr[rt_heap_gc_layout(heap)] + 15) & ~(size_t)15;
}

static void
check_sizes(int v311)
{
#ifdef RT_MALLOC_BYPASS
    ts_skip(v311 ? "object_sizes_311" : "object_sizes_312",
            "RT_MALLOC_BYPASS (no size classes)");
    return;
#endif
    rt_obj_t *d = rt_dict_new(heap);
    ck_assert_uint_eq(block_bytes(d, 0), gcb(64));
    ck_assert_uint_eq(block_bytes(d, 1), 0);           /* {}: no table */
    rt_dict_set_str(heap, d, "a", rt_none(heap));
    ck_assert_uint_eq(block_bytes(d, 1), 128);          /* 120: unicode */
    rt_obj_t *k = rt_int_new(heap, 7);
    rt_dict_set(d, k, rt_none(heap));
    ck_assert_uint_eq(block_bytes(d, 1), 160);          /* general */
    rt_decref(k); rt_decref(d);
    rt_obj_t *l = rt_list_new(heap);
    ck_assert_uint_eq(block_bytes(l, 0), gcb(56));
    rt_decref(l);
    rt_obj_t *t = rt_tuple_new(heap, 3);
    for (int i = 0; i < 3; i++)
        rt_tuple_set_steal(t, (size_t)i, rt_int_new(heap, i));
    ck_assert_uint_eq(block_bytes(t, 0), gcb(64));
    rt_decref(t);
    rt_obj_t *str = rt_str_from(heap, "abc");
    ck_assert_uint_eq(block_bytes(str, 0), v311 ? 64 : 48);  /* 52, 44 */
    rt_decref(str);
    rt_obj_t *big = rt_int_new(heap, 1000);
    ck_assert_uint_eq(block_bytes(big, 0), 32);          /* 28 */
    rt_decref(big);
    rt_obj_t *huge = rt_int_new(heap, (int64_t)1 << 61);
    ck_assert_uint_eq(block_bytes(huge, 0), 48);         /* 36 */
    rt_decref(huge);
    uint8_t buf[160] = { 0 };
    rt_obj_t *blob = rt_bytes_new(heap, buf, 160);
    ck_assert_uint_eq(block_bytes(blob, 0), 208);        /* 193 */
    rt_obj_t *nm = rt_str_intern(heap, "f", 1);
    rt_obj_t *code = rt_code_new(heap, nm, blob);
    ck_assert_uint_eq(block_bytes(code, 0), v311 ? 192 : 208);
    rt_obj_t *m = rt_module_new(heap, "mod");
    ck_assert_uint_eq(block_bytes(m, 0), gcb(72));
    rt_obj_t *f = rt_function_new(heap, nm, code, rt_module_dict(m));
    ck_assert_uint_eq(block_bytes(f, 0), gcb(v311 ? 152 : 160));
    rt_decref(f); rt_decref(code); rt_decref(blob); rt_decref(nm);
    rt_decref(m);
    rt_obj_t *cls = rt_class_new(heap, "C", NULL);
    /* type(): 960 / 976 bytes from malloc; the shared keys 768. */
    ck_assert_uint_eq(block_bytes(cls, 0), gcb(v311 ? 960 : 976) + 16);
    ck_assert_uint_eq(block_bytes(cls, 1), 768 + 16);
    rt_obj_t *inst[30];
    for (int i = 0; i < 30; i++) {
        inst[i] = rt_instance_new(heap, cls);
        for (int a = 0; a < 6; a++) {
            char an[4] = { 'a', (char)('0' + a), 0, 0 };
            rt_instance_setattr_str(heap, inst[i], an, rt_none(heap));
        }
    }
    /* 56 / 48 bytes; the first instance's values block has 29 slots
     * (256 bytes), the ones after the class's usable count reached 1 have
     * 7 (72 bytes). */
    ck_assert_uint_eq(block_bytes(inst[0], 0), gcb(v311 ? 56 : 48));
    ck_assert_uint_eq(block_bytes(inst[0], 1), 272);    /* 264 */
    ck_assert_uint_eq(block_bytes(inst[29], 1), 80);    /* 72 */
    for (int i = 0; i < 30; i++)
        rt_decref(inst[i]);
    rt_decref(cls);
    rt_obj_t *names = rt_tuple_new(heap, 6);
    for (int i = 0; i < 6; i++)
        rt_tuple_set_steal(names, (size_t)i,
                           rt_str_intern(heap, "abcdef" + i, 1));
    rt_obj_t *sc = rt_class_new_slots(heap, "S", NULL, names);
    rt_obj_t *so = rt_slots_new(heap, sc);
    ck_assert_uint_eq(block_bytes(so, 0), gcb(80));
    rt_decref(so); rt_decref(sc); rt_decref(names);
}

START_TEST(object_sizes_311) { check_sizes(1); }
END_TEST
START_TEST(object_sizes_312) { check_sizes(0); }
END_TEST

/* 3.12 (PEP 683): None, True, False, small ints and interned strings are
 * immortal; 3.11's are not. */
static void
check_immortal_statics(int want)
{
    ck_assert_int_eq(rt_is_immortal(rt_none(heap)), want);
    ck_assert_int_eq(rt_is_immortal(rt_true(heap)), want);
    rt_obj_t *five = rt_int_new(heap, 5);
    ck_assert_int_eq(rt_is_immortal(five), want);
    rt_decref(five);
    rt_obj_t *s = rt_str_intern(heap, "identifier", 10);
    ck_assert_int_eq(rt_is_immortal(s), want);
    rt_decref(s);
    rt_obj_t *plain = rt_str_from(heap, "identifier");
    ck_assert(!rt_is_immortal(plain));
    rt_decref(plain);
}

START_TEST(object_immortal_statics_311) { check_immortal_statics(0); }
END_TEST
START_TEST(object_immortal_statics_312) { check_immortal_statics(1); }
END_TEST

/* None and the small ints live outside the heap's arenas (static storage
 * in CPython's binary): no heap page holds them. */
START_TEST(object_statics_outside_heap)
{
    size_t n = mem_ranges(NULL, 0);
    mem_range_t *r = calloc(n + 1, sizeof *r);
    mem_ranges(r, n);
    uintptr_t a[3] = { (uintptr_t)rt_none(heap), (uintptr_t)rt_true(heap),
                       (uintptr_t)rt_int_new(heap, 7) };
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            ck_assert(!(r[i].start <= a[j] && a[j] < r[i].end));
    free(r);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("object");
    TCase *tc = tcase_create("object");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, object_second_heap_refused);
    tcase_add_test(tc, object_small_ints_shared);
    tcase_add_test(tc, object_str_intern_and_hash);
    tcase_add_test(tc, object_float_and_singletons);
    tcase_add_test(tc, object_list_overallocation_as_cpython);
    tcase_add_test(tc, object_list_semantics);
    tcase_add_test(tc, object_dict_order_delete_resize);
    tcase_add_test(tc, object_dict_tracking_rules);
    tcase_add_test(tc, object_tuple_semantics);
    tcase_add_test(tc, object_classes_instances_functions);
    tcase_add_test(tc, object_traverse_visits_every_reference);
    tcase_add_test(tc, object_refcount_zero_frees_exact_blocks);
    tcase_add_test(tc, object_nested_dealloc_no_stack_overflow);
    tcase_add_test(tc, object_immortal_refcount_unchanged);
    tcase_add_test(tc, object_immortal_readonly_page_no_fault);
    tcase_add_test_raise_signal(tc, object_mortal_readonly_page_faults,
                                SIGSEGV);
    tcase_add_test(tc, object_immortalize_heap_marks_reachable);
    suite_add_tcase(s, tc);

    tc = tcase_create("py311");
    tcase_add_checked_fixture(tc, setup311, teardown);
    tcase_add_test(tc, object_sizes_311);
    tcase_add_test(tc, object_immortal_statics_311);
    suite_add_tcase(s, tc);
    tc = tcase_create("py312");
    tcase_add_checked_fixture(tc, setup312, teardown);
    tcase_add_test(tc, object_sizes_312);
    tcase_add_test(tc, object_immortal_statics_312);
    tcase_add_test(tc, object_statics_outside_heap);
    suite_add_tcase(s, tc);

    /* Finalization, on 3.11 heaps (mortal interned strings). */
    tc = tcase_create("finalize");
    tcase_add_checked_fixture(tc, setup311, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, object_finalize_collects_cycles);
    tcase_add_test(tc, object_finalize_leaks_frozen_cycles);
    tcase_add_test(tc, object_finalize_collects_with_gc_disabled);
    tcase_add_test(tc, object_finalize_clears_immortal_module_dicts);
    tcase_add_test(tc, object_finalize_timer_excludes_release);
    tcase_add_test(tc, object_finalize_leaves_immortals_unwritten);
    tcase_add_test(tc, object_immortalize_heap_out_of_memory);
    tcase_add_test(tc, object_finalize_out_of_memory);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
