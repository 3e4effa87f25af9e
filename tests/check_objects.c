/*
 * check_objects.c -- unit tests for workloads/objects.c and the "objects"
 * section of the workload format: defaults and round trip, every error
 * with its file:line:column message, exact object counts (with and
 * without "heap"), sizes and interning as specified, cycles checked by an
 * independent search, roots that keep everything alive, determinism per
 * seed, and requests served on a generic heap.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "object.h"
#include "workload.h"
#include "support.h"

static rt_heap_t *heap;
static char err[1024];

static void
setup(void)
{
    heap = rt_heap_new();
    ck_assert_ptr_nonnull(heap);
    memset(err, 0, sizeof err);
}

static void
teardown(void)
{
    rt_heap_free(heap);
    heap = NULL;
}

static wl_spec_t *
load(const char *json)
{
    wl_spec_t *s = NULL;

    ck_assert_msg(wl_load_string(json, "t.json", &s, err, sizeof err) == 0,
                  "%s", err);
    return s;
}

static void
fails(const char *json, const char *want)
{
    wl_spec_t *s = NULL;

    ck_assert_int_eq(wl_load_string(json, "t.json", &s, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err, want);
}

static wl_app_t *
build(const wl_spec_t *s, double scale, uint64_t seed, wl_build_stats_t *st)
{
    wl_app_t *app = NULL;

    ck_assert_int_eq(wl_build(heap, s, scale, seed, &app, st), 0);
    ck_assert_ptr_nonnull(app);
    return app;
}

#define ROUTES "\"routes\": [{\"path\": \"/\", \"reads\": 50, " \
               "\"temporaries\": 10, \"cyclic_garbage\": 1}]"

/* Every kind, some of each. */
static const char mix[] =
    "{\"objects\": {\"modules\": 3, \"types\": {\"dict\": 10, \"list\": 20,"
    " \"tuple\": 5, \"set\": 3, \"instance\": 4, \"slots\": 2, "
    "\"function\": 6, \"class\": 2, \"code\": 6, \"str\": 30, \"int\": 7, "
    "\"float\": 3}}, " ROUTES "}";

/* ---- the format -------------------------------------------------------- */

START_TEST(objects_defaults_and_round_trip)
{
    wl_spec_t *s = load(mix), *again;
    json_t *j = wl_spec_to_json(s), *o, *h, *j2;
    char *text;

    ck_assert_ptr_nonnull(j);
    o = json_object_get(j, "objects");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_integer_value(json_object_get(
        json_object_get(o, "types"), "list")), 20);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "modules")), 3);
    ck_assert(json_real_value(json_object_get(o, "interned")) == 0.2);
    ck_assert(json_real_value(json_object_get(o, "cycle_fraction")) == 0.05);
    /* no size for the kinds that have none */
    ck_assert_ptr_null(json_object_get(json_object_get(o, "sizes"), "int"));
    ck_assert_ptr_nonnull(json_object_get(json_object_get(o, "sizes"),
                                          "str"));
    /* without "heap", the webapp generator is off */
    h = json_object_get(j, "heap");
    ck_assert_int_eq(json_integer_value(json_object_get(h, "modules")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "instances")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(h,
                     "interned_strings")), 1);
    text = json_dumps(j, JSON_SORT_KEYS);
    again = load(text);
    j2 = wl_spec_to_json(again);
    ck_assert(json_equal(j, j2));
    free(text);
    json_decref(j);
    json_decref(j2);
    wl_spec_free(again);
    wl_spec_free(s);

    /* the default workload has no "objects" */
    ck_assert_int_eq(wl_load_default(&s, err, sizeof err), 0);
    j = wl_spec_to_json(s);
    ck_assert_ptr_null(json_object_get(j, "objects"));
    json_decref(j);
    wl_spec_free(s);
}
END_TEST

START_TEST(objects_errors)
{
    fails("{\"objects\": 3, " ROUTES "}", "t.json:1:13: field 'objects': "
          "expected an object describing a heap shape, found 3");
    fails("{\"objects\": {\"types\": {\"dcit\": 1}}, " ROUTES "}",
          "t.json:1:24: field 'objects.types.dcit': unknown key, did you "
          "mean 'dict'?");
    fails("{\"objects\": {\"types\": {\"list\": -1}}, " ROUTES "}",
          "t.json:1:32: field 'objects.types.list': expected an integer "
          "from 0 to 100000000, found -1");
    fails("{\"objects\": {\"sizes\": {\"int\": [1]}}, " ROUTES "}",
          "t.json:1:31: field 'objects.sizes.int': int has no size "
          "distribution (only containers, class, str and code do)");
    fails("{\"objects\": {\"sizes\": {\"str\": [1, \"x\"]}}, " ROUTES "}",
          "t.json:1:35: field 'objects.sizes.str[1]': expected a weight "
          "from 0 to 1e12, found the string \"x\"");
    fails("{\"objects\": {\"sizes\": {\"str\": []}}, " ROUTES "}",
          "t.json:1:31: field 'objects.sizes.str': expected an array of 1 "
          "to 21 weights >= 0 (power-of-two buckets, see workload.h), "
          "found an empty array");
    fails("{\"objects\": {\"ref_distance\": [0, 0]}, " ROUTES "}",
          "t.json:1:30: field 'objects.ref_distance': every weight is 0: "
          "expected at least one > 0");
    fails("{\"objects\": {\"cycle_size\": [1, 1]}, " ROUTES "}",
          "t.json:1:29: field 'objects.cycle_size[0]': the first bucket "
          "stands for 0 members: its weight must be 0");
    fails("{\"objects\": {\"interned\": 1.5}, " ROUTES "}",
          "t.json:1:26: field 'objects.interned': expected a number from 0 "
          "to 1, found 1.5");
    fails("{\"objects\": {\"modules\": 0}, " ROUTES "}",
          "t.json:1:25: field 'objects.modules': expected an integer from "
          "1 to 100000000, found 0");
    fails("{\"objects\": {\"types\": {\"function\": 2}}, " ROUTES "}",
          "t.json:1:36: field 'objects.types.function': functions need "
          "code objects: 'code' is 0");
    fails("{\"objects\": {\"cycle_fracton\": 0.1}, " ROUTES "}",
          "t.json:1:14: field 'objects.cycle_fracton': unknown key, did you "
          "mean 'cycle_fraction'?");
    fails("{\"objects\": {\"frobnicate\": 1}, " ROUTES "}",
          "t.json:1:14: field 'objects.frobnicate': unknown key "
          "(workloads/workload.h lists every key)");
    fails("{\"objcets\": {}, " ROUTES "}", "t.json:1:2: field 'objcets': "
          "unknown key, did you mean 'objects'?");
}
END_TEST

/* ---- the build --------------------------------------------------------- */

START_TEST(objects_counts_exact)
{
    /* By hand: 4 * 3 modules, the base class (9) and the 2 keys; per
     * kind (a class 9 objects: name, bases, dict, class, mro, 2
     * descriptors, weakref and its key; a code entry 5: blob, code, its
     * consts and names tuples, kinds bytes; an instance 1, its attributes
     * inline): 10 + 20 + 5 + 3 + 4 + 2 + 6 + 2*9 + 6*5 + 30 + 7 + 3 =
     * 138; the __slots__ classes of the default slots sizes (buckets 1,
     * 2, 3: 1, 2 and 5 names), 8 + n each, and their 5 names: 9 + 10 +
     * 13 + 5 = 37; "x", code's local name (no heap code made it); and
     * the webapp's fixed 99 plus its one pool identifier. */
    const size_t want = 12 + 9 + 2 + 138 + 37 + 1 + 99 + 1;
    wl_spec_t *s = load(mix);
    size_t before = rt_heap_objects(heap);
    wl_build_stats_t st;
    wl_app_t *app = build(s, 1.0, 7, &st);
    char msg[256];

    ck_assert_uint_eq(wl_spec_objects(s, 1.0), want);
    ck_assert_uint_eq(st.objects, want);
    ck_assert_uint_eq(rt_heap_objects(heap) - before, want);
    /* the index: not a class's mro, descriptors, bases, weakref or key,
     * nor a code's parts */
    ck_assert_uint_lt(wl_app_objects(app), want);
    /* a full collection frees nothing: the roots hold every object */
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 0);
    ck_assert_uint_eq(rt_heap_objects(heap) - before, want);
    ck_assert_msg(gc_check_heap(msg, sizeof msg) == 0, "%s", msg);
    /* at scale 10 every count times 10, the pool's one identifier too;
     * the __slots__ classes, "x" and the fixed objects stay */
    ck_assert_uint_eq(wl_spec_objects(s, 10.0),
                      4 * 30 + 9 + 2 + 1380 + 37 + 1 + 99 + 10);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

START_TEST(objects_with_heap_adds_up)
{
    wl_spec_t *web, *both;
    json_t *j, *o;
    char *text;
    size_t before, want;
    wl_build_stats_t st;
    wl_app_t *app;

    ck_assert_int_eq(wl_load_default(&web, err, sizeof err), 0);
    j = wl_spec_to_json(web);
    o = json_object();
    json_object_set_new(o, "types", json_pack("{s:i, s:i}", "list", 10000,
                                              "str", 10000));
    json_object_set_new(j, "objects", o);
    text = json_dumps(j, 0);
    both = load(text);
    /* at 0.01: 1 module (of the default 10), 100 lists, 100 strs */
    want = wl_spec_objects(web, 0.01) + 4 * 1 + 9 + 2 + 200;
    ck_assert_uint_eq(wl_spec_objects(both, 0.01), want);
    before = rt_heap_objects(heap);
    app = build(both, 0.01, 3, &st);
    ck_assert_uint_eq(rt_heap_objects(heap) - before, want);
    ck_assert_uint_eq(st.objects, want);
    wl_app_free(app);
    free(text);
    json_decref(j);
    wl_spec_free(web);
    wl_spec_free(both);
}
END_TEST

/* Objects of type t the build made with a length in [lo, hi]; *distinct
 * is set if two of those lengths differ. */
static size_t
count_len(const wl_app_t *app, const rt_type_t *t, size_t lo, size_t hi,
          int *distinct)
{
    size_t n = 0, first = SIZE_MAX;

    *distinct = 0;
    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i);
        size_t len;

        if (o->type != t)
            continue;
        len = t == &rt_tuple_type ? rt_tuple_len(o)
              : t == &rt_bytes_type ? rt_bytes_len(o) : rt_str_len(o);
        if (len < lo || len > hi)
            continue;
        if (first == SIZE_MAX)
            first = len;
        *distinct |= len != first;
        n++;
    }
    return n;
}

START_TEST(objects_sizes_as_specified)
{
    /* tuples 8..15 items, code 64..127 bytes, str 16..31 bytes (no str
     * made by the webapp part but its names and pool identifier: those
     * are shorter than 16) */
    wl_spec_t *s = load("{\"objects\": {\"types\": {\"tuple\": 50, "
                        "\"code\": 40, \"str\": 60, \"int\": 10}, \"sizes\":"
                        " {\"tuple\": [0, 0, 0, 0, 1], \"code\": [0, 0, 0, "
                        "0, 0, 0, 0, 1], \"str\": [0, 0, 0, 0, 0, 1]}}, "
                        ROUTES "}");
    wl_app_t *app = build(s, 1.0, 11, NULL);
    int distinct;

    /* the webapp part indexes 4 one-item bases tuples, no bytes, and strs
     * of under 16 bytes; a code's tuples and kinds bytes are not indexed */
    ck_assert_uint_eq(count_len(app, &rt_tuple_type, 0, SIZE_MAX,
                                &distinct), 54);
    ck_assert_uint_eq(count_len(app, &rt_tuple_type, 8, 15, &distinct), 50);
    ck_assert(distinct);                /* uniform within the bucket */
    ck_assert_uint_eq(count_len(app, &rt_bytes_type, 0, SIZE_MAX,
                                &distinct), 40);
    ck_assert_uint_eq(count_len(app, &rt_bytes_type, 64, 127, &distinct),
                      40);
    ck_assert_uint_eq(count_len(app, &rt_str_type, 16, SIZE_MAX,
                                &distinct), 60);
    ck_assert_uint_eq(count_len(app, &rt_str_type, 16, 31, &distinct), 60);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

/* Strs of the section that are the interned copy of their text. */
static size_t
interned_strs(const wl_app_t *app)
{
    size_t n = 0;

    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i), *in;

        if (o->type != &rt_str_type || rt_str_data(o)[0] != '~'
            || rt_str_data(o)[1] == 'C' || rt_str_data(o)[1] == 'B')
            continue;                   /* class names: the class's own */
        in = rt_str_intern(heap, rt_str_data(o), rt_str_len(o));
        n += in == o;
        rt_decref(in);
    }
    return n;
}

START_TEST(objects_interned_share)
{
    wl_spec_t *all = load("{\"objects\": {\"types\": {\"str\": 80}, "
                          "\"interned\": 1}, " ROUTES "}");
    wl_spec_t *none = load("{\"objects\": {\"types\": {\"str\": 80}, "
                           "\"interned\": 0}, " ROUTES "}");
    wl_app_t *app = build(all, 1.0, 5, NULL);

    ck_assert_uint_eq(interned_strs(app), 80);
    wl_app_free(app);
    rt_heap_free(heap);
    heap = rt_heap_new();
    app = build(none, 1.0, 5, NULL);
    ck_assert_uint_eq(interned_strs(app), 0);    /* the control */
    wl_app_free(app);
    wl_spec_free(all);
    wl_spec_free(none);
}
END_TEST

/* Lists of the section on a cycle, found by following items: with sizes
 * [1] (no items of their own) and no references to containers, a list's
 * only item is its ring edge. */
static size_t
lists_on_cycles(const wl_app_t *app, size_t *lists, size_t *longest)
{
    size_t n = 0;

    *lists = 0;
    *longest = 0;
    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i), *p = o;
        size_t steps = 0;

        if (o->type != &rt_list_type || rt_list_len(o) > 1)
            continue;                   /* "__objects__" roots, urls... */
        (*lists)++;
        while (p->type == &rt_list_type && rt_list_len(p) == 1
               && steps < 1024) {
            p = rt_list_get(p, 0);
            steps++;
            if (p == o)
                break;
        }
        if (steps > 0 && p == o) {
            n++;
            if (steps > *longest)
                *longest = steps;
        }
    }
    return n;
}

START_TEST(objects_cycles_exact)
{
    static const char fmt[] =
        "{\"objects\": {\"types\": {\"list\": 200, \"int\": 10}, "
        "\"sizes\": {\"list\": [1]}, \"ref_container\": 0, "
        "\"cycle_fraction\": %s, \"cycle_size\": [0, 0, 1]}, " ROUTES "}";
    char json[512];
    wl_spec_t *s;
    wl_app_t *app;
    size_t lists, longest, before;

    snprintf(json, sizeof json, fmt, "0.25");
    s = load(json);
    app = build(s, 1.0, 9, NULL);
    /* 50 of the 200 lists, in rings of 2 or 3 */
    ck_assert_uint_eq(lists_on_cycles(app, &lists, &longest), 50);
    ck_assert_uint_le(longest, 3);
    ck_assert_uint_ge(longest, 2);
    /* the roots hold the rings: a collection frees none of them */
    before = rt_heap_objects(heap);
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 0);
    ck_assert_uint_eq(rt_heap_objects(heap), before);
    wl_app_free(app);
    wl_spec_free(s);

    rt_heap_free(heap);                 /* the control: no cycles */
    heap = rt_heap_new();
    snprintf(json, sizeof json, fmt, "0");
    s = load(json);
    app = build(s, 1.0, 9, NULL);
    ck_assert_uint_eq(lists_on_cycles(app, &lists, &longest), 0);
    ck_assert_uint_ge(lists, 200);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

START_TEST(objects_cycle_size_weighs_members)
{
    /* Half the members in cycles of 1 (self-references), half in cycles
     * of 128 to 255: 150 self-loops, and one or two rings for the rest. */
    wl_spec_t *s = load("{\"objects\": {\"types\": {\"list\": 300}, "
                        "\"sizes\": {\"list\": [1]}, \"ref_container\": 0,"
                        " \"cycle_fraction\": 1, \"cycle_size\": [0, 1, 0, "
                        "0, 0, 0, 0, 0, 1]}, " ROUTES "}");
    wl_app_t *app = build(s, 1.0, 4, NULL);
    size_t lists, longest, selfs = 0;

    ck_assert_uint_eq(lists_on_cycles(app, &lists, &longest), 300);
    ck_assert_uint_ge(longest, 128);
    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i);

        selfs += o->type == &rt_list_type && rt_list_len(o) == 1
                 && rt_list_get(o, 0) == o;
    }
    ck_assert_uint_eq(selfs, 150);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

/* The section's instances (class "~...") by attributes: in [lo, hi]
 * inline (no dict), and how many have a dict; slots instances by
 * length. */
static void
instances(const wl_app_t *app, size_t lo, size_t hi, size_t *inl,
          size_t *dicts, size_t *outside)
{
    *inl = *dicts = *outside = 0;
    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i), *cls;
        size_t n;

        if (rt_kind(o) != &rt_instance_type)
            continue;
        cls = rt_instance_class(o);
        if (rt_str_data(rt_class_name(cls))[0] != '~')
            continue;                   /* the webapp part's */
        if (rt_instance_has_dict(o)) {
            (*dicts)++;
            continue;
        }
        n = rt_dict_len(rt_instance_dict(o));   /* made now, to count */
        if (n >= lo && n <= hi)
            (*inl)++;
        else
            (*outside)++;
    }
}

START_TEST(objects_instances_inline)
{
    /* 100 instances: 75 of 4..7 attributes, inline; 25 of 32..63, more
     * than a class's shared keys hold (30 names, 29 for the first
     * instance), with a dict each.  Objects, by hand: 10 modules (40),
     * the base class (9), 2 keys, 3 classes (27), 100 instances, 2000
     * strs, the 25 dicts; the webapp's fixed 99 and its identifier.
     * A class's first instance takes its names among the strs made
     * before it (with 200 strs, some find fewer than they need and have
     * fewer attributes: the control below then fails). */
    static const char fmt[] =
        "{\"objects\": {\"types\": {\"class\": 3, \"instance\": 100, "
        "\"str\": 2000}, \"interned\": 1, \"sizes\": {\"instance\": "
        "%s}}, " ROUTES "}";
    char json[512];
    wl_spec_t *s;
    wl_app_t *app;
    size_t before, inl, dicts, outside;

    snprintf(json, sizeof json, fmt, "[0, 0, 0, 3, 0, 0, 1]");
    s = load(json);
    ck_assert_uint_eq(wl_spec_objects(s, 1.0),
                      40 + 9 + 2 + 27 + 100 + 2000 + 25 + 99 + 1);
    before = rt_heap_objects(heap);
    app = build(s, 1.0, 21, NULL);
    ck_assert_uint_eq(rt_heap_objects(heap) - before,
                      wl_spec_objects(s, 1.0));
    instances(app, 4, 7, &inl, &dicts, &outside);
    ck_assert_uint_eq(inl, 75);
    ck_assert_uint_eq(dicts, 25);
    ck_assert_uint_eq(outside, 0);
    wl_app_free(app);
    wl_spec_free(s);

    /* the control: 16..31 drawn as 16..29, all inline */
    rt_heap_free(heap);
    heap = rt_heap_new();
    snprintf(json, sizeof json, fmt, "[0, 0, 0, 0, 0, 1]");
    s = load(json);
    ck_assert_uint_eq(wl_spec_objects(s, 1.0),
                      40 + 9 + 2 + 27 + 100 + 2000 + 99 + 1);
    before = rt_heap_objects(heap);
    app = build(s, 1.0, 21, NULL);
    ck_assert_uint_eq(rt_heap_objects(heap) - before,
                      wl_spec_objects(s, 1.0));
    instances(app, 16, 29, &inl, &dicts, &outside);
    ck_assert_uint_eq(inl, 100);
    ck_assert_uint_eq(dicts, 0);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

START_TEST(objects_slots_classes)
{
    /* Sizes in buckets 2 (2-3) and 4 (8-15): a __slots__ class each, of
     * the buckets' middle values, 2 and 11 names; objects by hand: 10
     * modules (40), base (9), 2 keys, 40 slots instances, the classes
     * (8 + 2, 8 + 11) and their 11 names, the webapp's 99 + 1. */
    wl_spec_t *s = load("{\"objects\": {\"types\": {\"slots\": 40}, "
                        "\"sizes\": {\"slots\": [0, 0, 1, 0, 1]}}, "
                        ROUTES "}");
    size_t before = rt_heap_objects(heap), two = 0, eleven = 0, other = 0;
    wl_app_t *app;

    ck_assert_uint_eq(wl_spec_objects(s, 1.0),
                      40 + 9 + 2 + 40 + 10 + 19 + 11 + 99 + 1);
    app = build(s, 1.0, 8, NULL);
    ck_assert_uint_eq(rt_heap_objects(heap) - before,
                      wl_spec_objects(s, 1.0));
    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i);
        size_t n, set = 0;

        if (rt_kind(o) != &rt_slots_type
            || rt_str_data(rt_class_name(rt_instance_class(o)))[0] != '~')
            continue;
        n = rt_slots_len(o);
        for (size_t j = 0; j < n; j++)
            set += rt_slots_get(o, j) != NULL;
        ck_assert_uint_eq(set, n);      /* every slot set */
        two += n == 2;
        eleven += n == 11;
        other += n != 2 && n != 11;
    }
    ck_assert_uint_eq(two + eleven, 40);
    ck_assert_uint_gt(two, 0);
    ck_assert_uint_gt(eleven, 0);
    ck_assert_uint_eq(other, 0);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

/* A digest of the heap the build made: types, lengths and texts. */
static uint64_t
fingerprint(const wl_app_t *app)
{
    uint64_t x = 1469598103934665603ULL;

    for (size_t i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i);
        /* the static type: an instance's own type sits in its class,
         * at an address that may differ from build to build */
        uint64_t v = (uint64_t)(uintptr_t)rt_kind(o);

        if (o->type == &rt_str_type)
            for (size_t k = 0; k < rt_str_len(o); k++)
                x = (x ^ (uint8_t)rt_str_data(o)[k]) * 1099511628211ULL;
        else if (o->type == &rt_list_type)
            v ^= rt_list_len(o) << 8;
        else if (o->type == &rt_dict_type)
            v ^= rt_dict_len(o) << 8;
        else if (o->type == &rt_int_type)
            v ^= (uint64_t)rt_int_value(o);
        x = (x ^ v) * 1099511628211ULL;
    }
    return x;
}

static uint64_t
digest(const wl_spec_t *s, uint64_t seed)
{
    wl_app_t *app = build(s, 1.0, seed, NULL);
    uint64_t d = fingerprint(app);

    wl_app_free(app);
    rt_heap_free(heap);
    heap = rt_heap_new();
    ck_assert_ptr_nonnull(heap);
    return d;
}

START_TEST(objects_deterministic)
{
    wl_spec_t *s = load(mix);
    uint64_t a = digest(s, 42), b = digest(s, 42), c = digest(s, 43);

    ck_assert(a == b);
    ck_assert(a != c);                  /* the control: the seed matters */
    wl_spec_free(s);
}
END_TEST

START_TEST(objects_requests_served)
{
    wl_spec_t *s = load(mix);
    wl_app_t *app = build(s, 1.0, 1, NULL);
    wl_result_t res;
    size_t before = rt_heap_objects(heap);

    ck_assert_int_eq(wl_handle(app, "/", NULL, &res), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.objects_read, 50);
    ck_assert_uint_eq(res.cycles_made, 1);
    wl_result_fini(&res);
    /* the garbage cycle: 2 lists, which only the collector frees */
    ck_assert_uint_eq(rt_heap_objects(heap) - before, 2);
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 2);
    ck_assert_uint_eq(rt_heap_objects(heap), before);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("objects");
    TCase *tc = tcase_create("objects");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, objects_defaults_and_round_trip);
    tcase_add_test(tc, objects_errors);
    tcase_add_test(tc, objects_counts_exact);
    tcase_add_test(tc, objects_with_heap_adds_up);
    tcase_add_test(tc, objects_sizes_as_specified);
    tcase_add_test(tc, objects_interned_share);
    tcase_add_test(tc, objects_cycles_exact);
    tcase_add_test(tc, objects_cycle_size_weighs_members);
    tcase_add_test(tc, objects_instances_inline);
    tcase_add_test(tc, objects_slots_classes);
    tcase_add_test(tc, objects_deterministic);
    tcase_add_test(tc, objects_requests_served);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
