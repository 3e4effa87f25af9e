/*
 * check_workload.c -- unit tests for workloads/: the JSON format (defaults,
 * the embedded copy of webapp.json, every error class with its exact
 * file:line:column message), the heap builder (exact object counts from an
 * independent formula, determinism per seed) and the request handler
 * (status and JSON of every route, counters, refcounts left as found,
 * bounded retention, cyclic garbage that only the collector frees, and
 * out-of-memory paths).  Run from the repository root (fixtures:
 * tests/fixtures/workload/).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "mem.h"
#include "object.h"
#include "workload.h"
#include "support.h"

#define FIX "tests/fixtures/workload/"
#define SCALE 0.01                  /* ~10,000 objects: fast */

static rt_heap_t *heap;
static wl_spec_t *spec;             /* the embedded default */
static char err[1024];

static void
setup(void)
{
    heap = rt_heap_new();
    ck_assert_ptr_nonnull(heap);
    ck_assert_int_eq(wl_load_default(&spec, err, sizeof err), 0);
    memset(err, 0, sizeof err);
}

static void
teardown(void)
{
    wl_spec_free(spec);
    spec = NULL;
    rt_heap_free(heap);
    heap = NULL;
}

/* ---- the format ------------------------------------------------------- */

START_TEST(workload_default_loads)
{
    static const char *const paths[] = { "/", "/api/items", "/api/user",
                                         "/static" };
    json_t *j = wl_spec_to_json(spec), *routes;
    size_t i;

    ck_assert_str_eq(wl_spec_name(spec), "webapp");
    ck_assert_ptr_nonnull(j);
    routes = json_object_get(j, "routes");
    ck_assert_int_eq(json_array_size(routes), 4);
    for (i = 0; i < 4; i++)
        ck_assert_str_eq(json_string_value(json_object_get(
            json_array_get(routes, i), "path")), paths[i]);
    json_decref(j);
}
END_TEST

START_TEST(workload_embedded_matches_file)
{
    json_error_t je;
    json_t *file = json_load_file("workloads/webapp.json", 0, &je);
    json_t *embedded = json_loads(wl_default_json(), 0, &je);
    wl_spec_t *fs = NULL;
    json_t *a, *b;

    ck_assert_msg(file != NULL, "workloads/webapp.json: %s", je.text);
    ck_assert_ptr_nonnull(embedded);
    ck_assert_msg(json_equal(file, embedded), "workloads/webapp.json and "
                  "the embedded copy differ: rebuild");
    /* And both parse to the same spec. */
    ck_assert_int_eq(wl_load_file("workloads/webapp.json", &fs, err,
                                  sizeof err), 0);
    a = wl_spec_to_json(fs);
    b = wl_spec_to_json(spec);
    ck_assert(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    json_decref(file);
    json_decref(embedded);
    wl_spec_free(fs);
}
END_TEST

/* Keys a file leaves out take webapp's heap values and these route
 * defaults. */
START_TEST(workload_defaults)
{
    wl_spec_t *s = NULL;
    json_t *j, *d, *r;

    ck_assert_int_eq(wl_load_file(FIX "minimal.json", &s, err, sizeof err),
                     0);
    ck_assert_str_eq(wl_spec_name(s), "minimal");       /* from the file */
    j = wl_spec_to_json(s);
    d = wl_spec_to_json(spec);
    ck_assert(json_equal(json_object_get(j, "heap"),
                         json_object_get(d, "heap")));
    r = json_array_get(json_object_get(j, "routes"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "reads")), 0);
    ck_assert(json_real_value(json_object_get(r, "spread")) == 1.0);
    ck_assert(json_real_value(json_object_get(r, "offset")) == 0.0);
    ck_assert(json_real_value(json_object_get(r, "hot")) == 0.0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "walk_depth")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "walk_width")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "temporaries")),
                     0);
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                                        "cyclic_garbage")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "retain")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "retain_max")),
                     10000);
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                                        "response_items")), 10);
    ck_assert_int_eq(json_object_size(r), 12);
    json_decref(j);
    json_decref(d);
    wl_spec_free(s);
}
END_TEST

START_TEST(workload_to_json_round_trips)
{
    json_t *j = wl_spec_to_json(spec), *j2;
    char *text = json_dumps(j, 0);
    wl_spec_t *s = NULL;

    ck_assert_int_eq(wl_load_string(text, "dump", &s, err, sizeof err), 0);
    j2 = wl_spec_to_json(s);
    ck_assert(json_equal(j, j2));
    free(text);
    json_decref(j);
    json_decref(j2);
    wl_spec_free(s);
}
END_TEST

/* Load fixture `name`: expect rc and exactly the message `want`. */
static void
load_fails(const char *name, int rc, const char *want)
{
    wl_spec_t *s = NULL;
    char path[256];

    snprintf(path, sizeof path, FIX "%s", name);
    ck_assert_int_eq(wl_load_file(path, &s, err, sizeof err), rc);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err, want);
}

/* The same from a string. */
static void
string_fails(const char *json, const char *want)
{
    wl_spec_t *s = NULL;

    ck_assert_int_eq(wl_load_string(json, "t.json", &s, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err, want);
}

START_TEST(workload_error_bad_json)
{
    load_fails("bad_json.json", -EINVAL, FIX "bad_json.json:5:7: invalid "
               "JSON: string or '}' expected near ','");
    string_fails("", "t.json: empty workload file, expected a JSON object "
                 "with \"heap\" and \"routes\"");
    string_fails(" \n\t", "t.json: empty workload file, expected a JSON "
                 "object with \"heap\" and \"routes\"");
}
END_TEST

START_TEST(workload_error_missing_file)
{
    load_fails("no_such.json", -ENOENT, FIX "no_such.json: cannot read "
               "workload file: No such file or directory");
}
END_TEST

START_TEST(workload_error_wrong_type)
{
    load_fails("wrong_type.json", -EINVAL, FIX "wrong_type.json:7:34: "
               "field 'routes[2].reads': expected an integer from 0 to "
               "100000000, found the string \"ten\"");
    string_fails("{\"routes\": [{\"path\": \"/\", \"reads\": 2.5}]}",
                 "t.json:1:36: field 'routes[0].reads': expected an "
                 "integer from 0 to 100000000, found 2.5");
    string_fails("{\"routes\": {}}", "t.json:1:12: field 'routes': "
                 "expected an array of route objects, found an object");
    string_fails("{\"routes\": [7]}", "t.json:1:13: field 'routes[0]': "
                 "expected a route object, found 7");
    string_fails("[]", "t.json:1:1: expected a JSON object with \"heap\" "
                 "and \"routes\", found an empty array");
    string_fails("{\"name\": \"a b\", \"routes\": [{\"path\": \"/\"}]}",
                 "t.json:1:10: field 'name': expected a name of 1 to 64 "
                 "letters, digits, '.', '_' or '-', found the string \"a b\"");
    string_fails("{\"routes\": [{\"path\": \"no-slash\"}]}",
                 "t.json:1:22: field 'routes[0].path': expected a URL "
                 "path: '/' then up to 255 printable characters, no blank, "
                 "'?' or '#', found the string \"no-slash\"");
    string_fails("{\"heap\": [], \"routes\": [{\"path\": \"/\"}]}",
                 "t.json:1:10: field 'heap': expected an object of heap "
                 "sizes, found an empty array");
}
END_TEST

START_TEST(workload_error_out_of_range)
{
    load_fails("out_of_range.json", -EINVAL, FIX "out_of_range.json:4:26: "
               "field 'heap.slots_percent': expected an integer from 0 to "
               "100, found 101");
    load_fails("spread_range.json", -EINVAL, FIX "spread_range.json:3:34: "
               "field 'routes[0].spread': expected a number from 0 to 1, "
               "found 1.5");
    load_fails("window_past_end.json", -EINVAL, FIX "window_past_end.json:"
               "3:49: field 'routes[0].offset': offset + spread is 1.25, "
               "past the end of the heap (at most 1)");
    load_fails("retain_no_room.json", -EINVAL, FIX "retain_no_room.json:"
               "3:51: field 'routes[0].retain_max': must be >= 1 when "
               "retain is 5");
    load_fails("too_few_names.json", -EINVAL, FIX "too_few_names.json:3:29: "
               "field 'heap.interned_strings': expected an integer >= 50 "
               "(the most distinct names one dict of this heap needs), "
               "found 10");
    load_fails("duplicate_path.json", -EINVAL, FIX "duplicate_path.json:"
               "5:19: field 'routes[2].path': duplicate route path \"/x\" "
               "(also in routes[0])");
    string_fails("{\"heap\": {\"models\": 0}, \"routes\": [{\"path\": "
                 "\"/\"}]}", "t.json:1:21: field 'heap.models': instances "
                 "need at least one model");
    string_fails("{\"heap\": {\"template_depth\": 20, \"template_fanout\": "
                 "2}, \"routes\": [{\"path\": \"/\"}]}", "t.json:1:29: "
                 "field 'heap.template_depth': template_fanout^"
                 "template_depth makes templates of over 1000000 nodes");
    string_fails("{\"routes\": []}", "t.json:1:12: field 'routes': "
                 "expected 1 to 1024 routes, found 0");
}
END_TEST

START_TEST(workload_error_unknown_key)
{
    load_fails("unknown_key.json", -EINVAL, FIX "unknown_key.json:6:13: "
               "field 'routes[1].reeds': unknown key, did you mean "
               "'reads'?");
    load_fails("unknown_heap_key.json", -EINVAL, FIX "unknown_heap_key.json:"
               "4:9: field 'heap.frobnicate': unknown key (workloads/"
               "webapp.json lists every key)");
    string_fails("{\"rotues\": []}", "t.json:1:2: field 'rotues': unknown "
                 "key, did you mean 'routes'?");
}
END_TEST

START_TEST(workload_error_missing_field)
{
    load_fails("missing_path.json", -EINVAL, FIX "missing_path.json:4:9: "
               "field 'routes[1]': missing required key 'path'");
    load_fails("missing_routes.json", -EINVAL, FIX "missing_routes.json:1:1:"
               " missing required key 'routes'");
}
END_TEST

START_TEST(workload_error_duplicate_key)
{
    string_fails("{\"routes\": [{\"path\": \"/\", \"path\": \"/b\"}]}",
                 "t.json:1:32: invalid JSON: duplicate object key near "
                 "'\"path\"'");
}
END_TEST

/* ---- the build -------------------------------------------------------- */

static long
hv(json_t *heapj, const char *key)
{
    json_t *v = json_object_get(heapj, key);

    ck_assert_msg(json_is_integer(v), "heap.%s", key);
    return (long)json_integer_value(v);
}

static size_t
sc(long n, double scale)
{
    double x = (double)n * scale + 0.5;

    return n == 0 ? 0 : x < 1 ? 1 : (size_t)x;
}

/*
 * The objects a build makes, worked out here from the spec's JSON, section
 * by section, independently of webapp.c's wl_spec_objects().
 */
static size_t
expected_objects(const wl_spec_t *s, double scale)
{
    json_t *j = wl_spec_to_json(s), *h = json_object_get(j, "heap");
    size_t names = 22;                  /* __name__ ... temporaries */
    /* __doc__ __package__ __loader__ __spec__ (modules), __dict__
     * __weakref__ (root classes), __slots__ (SlotModel) */
    size_t runtime_names = 7;
    size_t object_subclasses = 1;       /* object's subclass table */
    size_t app_modules = 4 * 3;         /* settings, models, urls, templates */
    /* A root class: name, bases (object,), dict, class, mro, __dict__ and
     * __weakref__ descriptors, a weakref and its key in its base's
     * subclass table.  A derived one: the builder's bases tuple, name,
     * dict, class, mro, weakref, key.  Field (root), 4 kinds (derived) and
     * Field's subclass table, Model (root), SlotModel (its () slots tuple
     * and a root without descriptors). */
    size_t root = 9, derived = 7;
    size_t model_classes = root + 4 * derived + 1 + root + (1 + 7);
    size_t lists = 2;                   /* urlpatterns, TEMPLATES */
    size_t total = names + runtime_names + object_subclasses + app_modules
                   + model_classes + lists;
    size_t need, pool, C, M, F, per_class, per_module, nodes = 0, leaves = 1;
    size_t I, A, i, nmod, nmodels;

    /* Identifier pool: at least the most keys one dict takes from it. */
    need = (size_t)(hv(h, "functions_per_module")
                    + hv(h, "constants_per_module"));
    if ((size_t)hv(h, "methods_per_class") > need)
        need = (size_t)hv(h, "methods_per_class");
    if ((size_t)hv(h, "config_keys") > need)
        need = (size_t)hv(h, "config_keys");
    if ((size_t)hv(h, "fields_per_model") > need)
        need = (size_t)hv(h, "fields_per_model");
    if ((size_t)hv(h, "instance_attrs") > need)
        need = (size_t)hv(h, "instance_attrs");
    pool = sc(hv(h, "interned_strings"), scale);
    total += pool > need ? pool : need;

    /* A library module: module, globals, name; its first class a root,
     * the others derived from it (and its subclass table); a function is
     * its code blob, code object (with a consts tuple, a local-names
     * tuple and a kinds bytes) and the function; every third method has
     * a defaults tuple. */
    C = (size_t)hv(h, "classes_per_module");
    M = (size_t)hv(h, "methods_per_class");
    F = (size_t)hv(h, "functions_per_module");
    per_class = 6 * M;
    for (i = 0; i < M; i++)
        per_class += i % 3 == 2;
    per_module = 3 + C * per_class + 6 * F
                 + (size_t)hv(h, "constants_per_module");
    if (C > 0)
        per_module += root + derived * (C - 1) + (C > 1);
    nmod = sc(hv(h, "modules"), scale);
    total += nmod * per_module;
    if (nmod > 0 && C * M + F > 0)
        total += 1;                     /* "x", a code's local ("n" is
                                           one of the names above) */

    /* Settings: dict + its SETTING_n name + values (every 4th a
     * singleton). */
    for (i = 0; i < (size_t)hv(h, "config_keys"); i++)
        total += sc(hv(h, "config_dicts"), scale) * (i % 4 != 3);
    total += sc(hv(h, "config_dicts"), scale) * 2;

    total += sc(hv(h, "url_patterns"), scale) * 3;

    /* A template: dict + list per inner node, a str per leaf. */
    for (i = 0; i < (size_t)hv(h, "template_depth"); i++) {
        nodes += leaves;
        leaves *= (size_t)hv(h, "template_fanout");
    }
    total += sc(hv(h, "templates"), scale) * (2 * nodes + leaves);

    /* A model: _fields, its class (derived from Model), its Slots twin
     * (slots tuple, bases, name, dict, class, mro, weakref, key and a
     * member descriptor per slot), _instances; per field an instance and
     * a column name; and once, the subclass tables of Model and
     * SlotModel. */
    A = (size_t)hv(h, "instance_attrs");
    nmodels = sc(hv(h, "models"), scale);
    if (nmodels > 0)
        total += 2 + nmodels * (1 + derived + 8 + A + 1
                                + 2 * (size_t)hv(h, "fields_per_model"));

    /* Instances: one object each, slotted or not (attributes live in
     * values blocks); attributes k % 4 == 0 or 1 are new (int, str). */
    I = sc(hv(h, "instances"), scale);
    total += I;
    for (i = 0; i < A; i++)
        total += I * (i % 4 < 2);
    json_decref(j);
    return total;
}

static wl_app_t *
build(const wl_spec_t *s, double scale, uint64_t seed, wl_build_stats_t *st)
{
    wl_app_t *app = NULL;

    ck_assert_int_eq(wl_build(heap, s, scale, seed, &app, st), 0);
    ck_assert_ptr_nonnull(app);
    return app;
}

static void
check_counts(const wl_spec_t *s, double scale)
{
    size_t before = rt_heap_objects(heap), want = expected_objects(s, scale);
    wl_build_stats_t st;
    wl_app_t *app = build(s, scale, 7, &st);
    char msg[256];

    ck_assert_uint_eq(st.objects, want);
    ck_assert_uint_eq(rt_heap_objects(heap) - before, want);
    ck_assert_uint_eq(wl_spec_objects(s, scale), want);
    ck_assert_uint_le(wl_app_objects(app), want);   /* the pickable ones */
    ck_assert_uint_gt(wl_app_objects(app), want / 2);
    ck_assert_uint_gt(st.containers, 0);
    ck_assert_uint_lt(st.containers, st.objects);
    ck_assert_uint_gt(st.hot, 0);
    ck_assert_msg(gc_check_heap(msg, sizeof msg) == 0, "%s", msg);
    wl_app_free(app);
}

START_TEST(workload_build_counts_exact)
{
    check_counts(spec, SCALE);
}
END_TEST

START_TEST(workload_build_counts_edge_shapes)
{
    wl_spec_t *s = NULL;

    ck_assert_int_eq(wl_load_file(FIX "shapes.json", &s, err, sizeof err),
                     0);
    check_counts(s, 1.0);
    wl_spec_free(s);
}
END_TEST

START_TEST(workload_build_counts_tiny_scale)
{
    wl_spec_t *s = NULL;

    /* At 0.001 every count rounds to 1 or so, and the pool to its minimum. */
    ck_assert_int_eq(wl_load_file(FIX "shapes.json", &s, err, sizeof err),
                     0);
    check_counts(s, 0.001);
    wl_spec_free(s);
}
END_TEST

/* A digest of the built heap: every object's type and contents. */
static uint64_t
fingerprint(const wl_app_t *app)
{
    uint64_t x = 1469598103934665603ULL;
    size_t i, k;

    for (i = 0; i < wl_app_objects(app); i++) {
        rt_obj_t *o = wl_app_object(app, i);
        const char *t = rt_type_name(o);
        uint64_t v = 0;

        for (k = 0; t[k] != '\0'; k++)
            x = (x ^ (uint8_t)t[k]) * 1099511628211ULL;
        if (o->type == &rt_str_type)
            for (k = 0; k < rt_str_len(o); k++)
                x = (x ^ (uint8_t)rt_str_data(o)[k]) * 1099511628211ULL;
        else if (o->type == &rt_bytes_type)
            v = rt_bytes_len(o) ^ rt_bytes_data(o)[0];
        else if (o->type == &rt_int_type)
            v = (uint64_t)rt_int_value(o);
        else if (o->type == &rt_list_type)
            v = rt_list_len(o);
        else if (o->type == &rt_dict_type)
            v = rt_dict_len(o);
        x = (x ^ v) * 1099511628211ULL;
    }
    return x;
}

/* One heap per process: build, digest, tear down, build again. */
static uint64_t
digest_of_build(uint64_t seed)
{
    wl_app_t *app = build(spec, SCALE, seed, NULL);
    uint64_t d = fingerprint(app);

    wl_app_free(app);
    rt_heap_free(heap);
    heap = rt_heap_new();
    ck_assert_ptr_nonnull(heap);
    return d;
}

START_TEST(workload_build_deterministic)
{
    uint64_t a = digest_of_build(42), b = digest_of_build(42);
    uint64_t c = digest_of_build(43);

    ck_assert(a == b);
    ck_assert(a != c);
}
END_TEST

START_TEST(workload_build_rejects_bad_scale)
{
    wl_app_t *app = NULL;

    ck_assert_int_eq(wl_build(heap, spec, 0, 1, &app, NULL), -EINVAL);
    ck_assert_int_eq(wl_build(heap, spec, 1001, 1, &app, NULL), -EINVAL);
    ck_assert_int_eq(wl_build(heap, spec, -1, 1, &app, NULL), -EINVAL);
    ck_assert_ptr_null(app);
}
END_TEST

/* --prefork-gc collected: every survivor in the oldest generation and
 * nothing pending, the state after a final gc.collect(). */
START_TEST(workload_build_collected_leaves_heap_old)
{
    wl_app_t *app = NULL;
    long c[3];
    size_t pending, total;

    ck_assert_int_eq(wl_build_gc(heap, spec, SCALE, 1, WL_GC_COLLECTED,
                                 &app, NULL), 0);
    gc_get_count(c);
    gc_get_long_lived(&pending, &total);
    ck_assert_uint_eq(gc_gen_size(0), 0);
    ck_assert_uint_eq(gc_gen_size(1), 0);
    ck_assert_uint_gt(gc_gen_size(2), 1000);
    ck_assert_int_eq(c[0], 0);
    ck_assert_uint_eq(pending, 0);
    ck_assert_uint_eq(total, gc_gen_size(2));
    wl_app_free(app);
}
END_TEST

/* The default, as an import leaves the collector: it ran by threshold
 * all along, so the young generations and the long-lived pending count
 * are not empty at the end, and every count obeys its threshold.  Fails
 * with a build that pauses the collector. */
START_TEST(workload_build_import_leaves_collector_midway)
{
    wl_app_t *app = NULL;
    gc_genstats_t st[GC_NGENS];
    long c[3];
    size_t pending, total;

    /* 0.1: ~150,000 objects, some 80 young collections on the way */
    ck_assert_int_eq(wl_build_gc(heap, spec, 0.1, 1, WL_GC_IMPORT,
                                 &app, NULL), 0);
    gc_get_stats(st);
    gc_get_count(c);
    gc_get_long_lived(&pending, &total);
    ck_assert_uint_gt(st[0].collections, 20);
    ck_assert_uint_gt(st[1].collections, 0);
    ck_assert_uint_gt(gc_gen_size(0) + gc_gen_size(1), 0);
    ck_assert_int_gt(c[0] + c[1], 0);
    ck_assert_int_le(c[0], 700);
    ck_assert_int_le(c[1], 10);
    ck_assert_uint_gt(pending, 0);
    ck_assert_uint_ge(pending + total, gc_gen_size(2)); /* less deaths */
    wl_app_free(app);
}
END_TEST

/* Finalize frees the whole app (3.11: no immortal objects): nothing is
 * left but the object class's subclass table, a root of static storage.
 * Fails when a build leaks a reference (each code blob was kept once
 * too often, and outlived its function). */
START_TEST(workload_finalize_leaves_nothing)
{
    rt_opts_t o;
    rt_teardown_t st;
    wl_app_t *app = NULL;

    rt_heap_free(heap);
    rt_opts_default(&o);
    o.python = RT_PY_311;
    heap = rt_heap_new_opts(&o);
    ck_assert_ptr_nonnull(heap);
    app = build(spec, SCALE, 1, NULL);
    memset(&st, 0, sizeof st);
    rt_finalize(heap, &st);
    heap = rt_heap_new();               /* for teardown() */
    ck_assert_uint_eq(st.left, 1);
    ck_assert_uint_gt(st.deallocated, wl_app_objects(app));
    wl_app_free(app);
}
END_TEST

/* Every build allocation failing in turn: -ENOMEM or success, never a
 * crash, and the heap still finalizes. */
START_TEST(workload_build_out_of_memory)
{
    wl_spec_t *s = NULL;
    long n;

    ck_assert_int_eq(wl_load_file(FIX "shapes.json", &s, err, sizeof err),
                     0);
    for (n = 1; n < 100000; n++) {
        wl_app_t *app = NULL;
        int rc;

        mem_fail_after(n);
        rc = wl_build(heap, s, 0.05, 3, &app, NULL);
        mem_fail_after(0);
        ck_assert_msg(rc == 0 || rc == -ENOMEM, "n=%ld rc=%d", n, rc);
        ck_assert((rc == 0) == (app != NULL));
        wl_app_free(app);
        rt_heap_free(heap);
        heap = rt_heap_new();
        ck_assert_ptr_nonnull(heap);
        if (rc == 0)
            break;                      /* every failure point tried */
    }
    ck_assert_int_gt(n, 100);           /* pools, or malloc under bypass */
    wl_spec_free(s);
}
END_TEST

/* ---- requests --------------------------------------------------------- */

static json_t *
route_json(const wl_spec_t *s, size_t i)
{
    json_t *j = wl_spec_to_json(s);
    json_t *r = json_incref(json_array_get(json_object_get(j, "routes"), i));

    json_decref(j);
    return r;
}

static long
rv(json_t *r, const char *key)
{
    return (long)json_integer_value(json_object_get(r, key));
}

START_TEST(workload_routes_serve_json)
{
    wl_app_t *app = build(spec, SCALE, 5, NULL);
    size_t i;
    int rep;

    ck_assert_uint_eq(wl_route_count(app), 4);
    for (i = 0; i < wl_route_count(app); i++) {
        json_t *r = route_json(spec, i);

        ck_assert_str_eq(wl_route_path(app, i),
                         json_string_value(json_object_get(r, "path")));
        for (rep = 0; rep < 3; rep++) {
            wl_result_t res;
            json_error_t je;
            json_t *body;
            char *redump;

            ck_assert_int_eq(wl_handle(app, wl_route_path(app, i), NULL,
                                       &res), 0);
            ck_assert_int_eq(res.status, 200);
            ck_assert_uint_eq(res.body_len, strlen(res.body));
            body = json_loads(res.body, 0, &je);
            ck_assert_msg(body != NULL, "%s: %s", res.body, je.text);
            /* the bytes jansson's compact dump gives, keys in order */
            redump = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
            ck_assert_ptr_nonnull(redump);
            ck_assert_str_eq(res.body, redump);
            free(redump);
            ck_assert_str_eq(json_string_value(json_object_get(body,
                             "route")), wl_route_path(app, i));
            ck_assert_int_eq(json_array_size(json_object_get(body, "items")),
                             rv(r, "response_items"));
            ck_assert_uint_eq(res.objects_read, (size_t)rv(r, "reads"));
            ck_assert_uint_ge(res.objects_touched, res.objects_read);
            ck_assert_uint_eq(res.temporaries, (size_t)rv(r, "temporaries"));
            ck_assert_uint_eq(res.cycles_made,
                              (size_t)rv(r, "cyclic_garbage"));
            ck_assert_uint_eq(res.retained, (size_t)rv(r, "retain"));
            ck_assert_int_eq(json_integer_value(json_object_get(body,
                             "objects_read")), rv(r, "reads"));
            json_decref(body);
            wl_result_fini(&res);
            ck_assert_ptr_null(res.body);
        }
        json_decref(r);
    }
    wl_app_free(app);
}
END_TEST

/* Touches of the same picks (same seed) at a walk depth. */
static size_t
touches(wl_app_t *app, const char *query)
{
    wl_result_t res;
    size_t n;

    wl_app_seed(app, 99);
    ck_assert_int_eq(wl_handle(app, "/", query, &res), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.hot_reads, 0);
    n = res.objects_touched;
    wl_result_fini(&res);
    return n;
}

START_TEST(workload_walk_depth_and_hot)
{
    wl_app_t *app = build(spec, SCALE, 5, NULL);
    wl_result_t res;
    size_t d0, d1, d2;

    /* /static: hot 1.0, walk_depth 0: one touch per read, all hot. */
    ck_assert_int_eq(wl_handle(app, "/static", NULL, &res), 0);
    ck_assert_uint_eq(res.hot_reads, res.objects_read);
    ck_assert_uint_eq(res.objects_touched, res.objects_read);
    wl_result_fini(&res);
    /* hot 0: none from the hot set; each level touches more. */
    d0 = touches(app, "hot=0&reads=500&walk_depth=0");
    d1 = touches(app, "hot=0&reads=500&walk_depth=1");
    d2 = touches(app, "hot=0&reads=500&walk_depth=2");
    ck_assert_uint_eq(d0, 500);
    ck_assert_uint_gt(d1, d0);
    ck_assert_uint_gt(d2, d1);
    ck_assert_uint_eq(touches(app, "hot=0&reads=500&walk_depth=1"), d1);
    /* walk_width bounds the children per level. */
    ck_assert_uint_le(touches(app, "hot=0&reads=500&walk_depth=1"
                              "&walk_width=2"), 500 * 3);
    wl_app_free(app);
}
END_TEST

/* The response body is made of runtime objects first, as a Python app
 * makes it: a dict per item, a list, the body dict.  With the collector
 * paused and its free lists empty, a request with 100 response items and
 * nothing else leaves generation 0's count 81 higher: 102 containers
 * counted, then 80 item dicts and the list kept on the free lists (not
 * counted off), 20 dicts and the body counted off.  Fails with a body
 * built only in C (jansson). */
START_TEST(workload_response_is_runtime_objects)
{
    wl_app_t *app = build(spec, SCALE, 1, NULL);
    wl_result_t res;
    long c0[3], c1[3];
    size_t objs;

    gc_disable();
    gc_collect(2);                      /* empties the free lists */
    gc_get_count(c0);
    objs = rt_heap_objects(heap);
    ck_assert_int_eq(wl_handle(app, wl_route_path(app, 0), "reads=0&"
                               "temporaries=0&cyclic_garbage=0&retain=0&"
                               "response_items=100", &res), 0);
    ck_assert_int_eq(res.status, 200);
    gc_get_count(c1);
    ck_assert_int_eq(c1[0] - c0[0], 81);
    ck_assert_uint_eq(rt_heap_objects(heap), objs);     /* all freed */
    wl_result_fini(&res);
    gc_enable();
    wl_app_free(app);
}
END_TEST

/* The body is the text jansson's compact dump makes: a route path with a
 * quote and a backslash comes out escaped, and the whole body is the same
 * bytes as a jansson re-dump of it. */
START_TEST(workload_response_json_escapes)
{
    const char *json = "{\"routes\": [{\"path\": \"/q\\\"b\\\\c\", "
                       "\"reads\": 50, \"response_items\": 50}]}";
    wl_spec_t *s = NULL;
    wl_app_t *app;
    wl_result_t res;
    json_error_t je;
    json_t *body;
    char *redump;

    ck_assert_int_eq(wl_load_string(json, "esc.json", &s, err, sizeof err),
                     0);
    app = build(s, SCALE, 3, NULL);
    ck_assert_str_eq(wl_route_path(app, 0), "/q\"b\\c");
    ck_assert_int_eq(wl_handle(app, "/q\"b\\c", NULL, &res), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_nonnull(strstr(res.body, "{\"route\":\"/q\\\"b\\\\c\","));
    body = json_loads(res.body, 0, &je);
    ck_assert_msg(body != NULL, "%s: %s", res.body, je.text);
    ck_assert_str_eq(json_string_value(json_object_get(body, "route")),
                     "/q\"b\\c");
    redump = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(res.body, redump);
    free(redump);
    json_decref(body);
    wl_result_fini(&res);
    wl_app_free(app);
    wl_spec_free(s);
}
END_TEST

START_TEST(workload_unknown_route_404)
{
    wl_app_t *app = build(spec, SCALE, 5, NULL);
    wl_result_t res;
    json_t *body;

    ck_assert_int_eq(wl_handle(app, "/nope", NULL, &res), 0);
    ck_assert_int_eq(res.status, 404);
    body = json_loads(res.body, 0, NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(json_string_value(json_object_get(body, "error")),
                     "no such route");
    ck_assert_str_eq(json_string_value(json_object_get(body, "path")),
                     "/nope");
    ck_assert_uint_eq(res.objects_read, 0);
    json_decref(body);
    wl_result_fini(&res);
    /* A path with bytes that are not UTF-8 still gives valid JSON. */
    ck_assert_int_eq(wl_handle(app, "/\xff\x01x", NULL, &res), 0);
    ck_assert_int_eq(res.status, 404);
    body = json_loads(res.body, 0, NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(json_string_value(json_object_get(body, "path")),
                     "/??x");
    json_decref(body);
    wl_result_fini(&res);
    wl_app_free(app);
}
END_TEST

START_TEST(workload_query_overrides)
{
    wl_app_t *app = build(spec, SCALE, 5, NULL);
    wl_result_t res;
    json_t *body;

    ck_assert_int_eq(wl_handle(app, "/api/items", "reads=7&temporaries=3"
                               "&response_items=2&retain=0", &res), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.objects_read, 7);
    ck_assert_uint_eq(res.temporaries, 3);
    ck_assert_uint_eq(res.retained, 0);
    wl_result_fini(&res);
    ck_assert_int_eq(wl_handle(app, "/api/items", "", &res), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.objects_read, 3000);      /* the route's own */
    wl_result_fini(&res);

    ck_assert_int_eq(wl_handle(app, "/", "reads=ten", &res), 0);
    ck_assert_int_eq(res.status, 400);
    body = json_loads(res.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(body, "error")),
                     "query 'reads': expected an integer from 0 to "
                     "100000000, got 'ten'");
    json_decref(body);
    wl_result_fini(&res);
    ck_assert_int_eq(wl_handle(app, "/", "bogus=1", &res), 0);
    ck_assert_int_eq(res.status, 400);
    wl_result_fini(&res);
    ck_assert_int_eq(wl_handle(app, "/", "reads", &res), 0);
    ck_assert_int_eq(res.status, 400);
    wl_result_fini(&res);
    ck_assert_int_eq(wl_handle(app, "/", "offset=0.9&spread=0.5", &res), 0);
    ck_assert_int_eq(res.status, 400);
    wl_result_fini(&res);
    ck_assert_int_eq(wl_handle(app, "/", "path=/x", &res), 0);
    ck_assert_int_eq(res.status, 400);
    wl_result_fini(&res);
    wl_app_free(app);
}
END_TEST

/* A sample of the shared objects' refcounts, every 7th. */
static intptr_t *
snapshot(const wl_app_t *app, size_t *n)
{
    size_t i;
    intptr_t *v;

    *n = (wl_app_objects(app) + 6) / 7;
    v = malloc(*n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (i = 0; i < *n; i++)
        v[i] = rt_refcnt(wl_app_object(app, i * 7));
    return v;
}

START_TEST(workload_reads_leave_refcounts)
{
    wl_app_t *app = build(spec, SCALE, 11, NULL);
    size_t i, n, objects, cached;
    intptr_t *before, *after;
    int rep;

    gc_disable();                       /* exact counts below */
    for (i = 0; i < wl_route_count(app); i++) {   /* worker-local setup */
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, wl_route_path(app, i), NULL, &res),
                         0);
        wl_result_fini(&res);
    }
    gc_collect(GC_GEN_OLDEST);
    objects = rt_heap_objects(heap);
    cached = wl_app_cached(app);
    before = snapshot(app, &n);
    for (rep = 0; rep < 5; rep++) {
        for (i = 0; i < wl_route_count(app); i++) {
            wl_result_t res;
            size_t o0 = rt_heap_objects(heap), c0 = wl_app_cached(app);

            ck_assert_int_eq(wl_handle(app, wl_route_path(app, i), NULL,
                                       &res), 0);
            /* Temporaries are gone; the cycles and the cache stay. */
            ck_assert_uint_eq(rt_heap_objects(heap), o0
                              + 2 * res.cycles_made
                              + 3 * (wl_app_cached(app) - c0));
            wl_result_fini(&res);
        }
    }
    gc_collect(GC_GEN_OLDEST);
    ck_assert_uint_eq(rt_heap_objects(heap),
                      objects + 3 * (wl_app_cached(app) - cached));
    after = snapshot(app, &n);
    for (i = 0; i < n; i++)
        ck_assert_msg(before[i] == after[i], "object %zu (%s): refcnt %ld "
                      "became %ld", i * 7,
                      rt_type_name(wl_app_object(app, i * 7)),
                      (long)before[i], (long)after[i]);
    free(before);
    free(after);
    wl_app_free(app);
}
END_TEST

START_TEST(workload_retention_bounded)
{
    wl_app_t *app = build(spec, SCALE, 11, NULL);
    const char *q = "reads=0&temporaries=0&cyclic_garbage=0&retain=7"
                    "&retain_max=50&response_items=0";
    size_t objects = 0, evicted = 0;
    int i;

    ck_assert_uint_eq(wl_app_cached(app), 0);     /* lazy: none yet */
    for (i = 0; i < 100; i++) {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, "/api/items", q, &res), 0);
        ck_assert_int_eq(res.status, 200);
        ck_assert_uint_eq(res.retained, 7);
        evicted += res.evicted;
        ck_assert_uint_le(wl_app_cached(app), 50);
        wl_result_fini(&res);
        if (i == 10)
            objects = rt_heap_objects(heap);
        else if (i > 10)                /* full: in as many as out */
            ck_assert_uint_eq(rt_heap_objects(heap), objects);
    }
    ck_assert_uint_eq(wl_app_cached(app), 50);
    ck_assert_uint_eq(evicted, 700 - 50);
    /* Lowering retain_max trims the cache at once. */
    {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, "/api/items", "reads=0&retain=1"
                                   "&retain_max=10", &res), 0);
        ck_assert_uint_eq(wl_app_cached(app), 10);
        ck_assert_uint_eq(rt_heap_objects(heap), objects - 3 * 40);
        wl_result_fini(&res);
    }
    wl_app_free(app);
}
END_TEST

START_TEST(workload_cycles_need_the_gc)
{
    wl_app_t *app = build(spec, SCALE, 11, NULL);
    const char *q = "reads=0&temporaries=0&cyclic_garbage=10&retain=0";
    size_t before;
    int i;

    /* Warm up (worker-local state), then count. */
    for (i = 0; i < 2; i++) {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, "/api/user", q, &res), 0);
        wl_result_fini(&res);
    }
    gc_collect(GC_GEN_OLDEST);
    gc_disable();
    before = rt_heap_objects(heap);
    for (i = 0; i < 200; i++) {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, "/api/user", q, &res), 0);
        ck_assert_uint_eq(res.cycles_made, 10);
        wl_result_fini(&res);
    }
    /* GC off: every cycle is still there. */
    ck_assert_uint_eq(rt_heap_objects(heap), before + 200 * 10 * 2);
    ck_assert_int_eq(gc_collect(GC_GEN_OLDEST), 200 * 10 * 2);
    ck_assert_uint_eq(rt_heap_objects(heap), before);

    /* GC on: the collector keeps up; never more than a threshold's worth
     * of cycles waits. */
    gc_enable();
    for (i = 0; i < 200; i++) {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, "/api/user", q, &res), 0);
        wl_result_fini(&res);
        ck_assert_uint_le(rt_heap_objects(heap), before + 800);
    }
    wl_app_free(app);
}
END_TEST

/* Requests that run out of memory return -ENOMEM and leave the heap
 * sound; the next request succeeds. */
START_TEST(workload_request_out_of_memory)
{
    wl_app_t *app = build(spec, SCALE, 11, NULL);
    char msg[256];
    long n, failures = 0;
    size_t i;

    for (n = 1; n < 400; n += 3) {
        for (i = 0; i < wl_route_count(app); i++) {
            wl_result_t res;
            int rc;

            mem_fail_after(n);
            rc = wl_handle(app, wl_route_path(app, i), NULL, &res);
            mem_fail_after(0);
            ck_assert_msg(rc == 0 || rc == -ENOMEM, "rc=%d", rc);
            if (rc == 0)
                wl_result_fini(&res);
            else
                ck_assert_ptr_null(res.body);
            failures += rc < 0;
        }
    }
    ck_assert_int_gt(failures, 100);
    gc_collect(GC_GEN_OLDEST);
    ck_assert_msg(gc_check_heap(msg, sizeof msg) == 0, "%s", msg);
    for (i = 0; i < wl_route_count(app); i++) {
        wl_result_t res;

        ck_assert_int_eq(wl_handle(app, wl_route_path(app, i), NULL, &res),
                         0);
        ck_assert_int_eq(res.status, 200);
        wl_result_fini(&res);
    }
    wl_app_free(app);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("workload");
    TCase *tf = tcase_create("format");
    TCase *tb = tcase_create("build");
    TCase *tr = tcase_create("requests");

    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_add_test(tf, workload_default_loads);
    tcase_add_test(tf, workload_embedded_matches_file);
    tcase_add_test(tf, workload_defaults);
    tcase_add_test(tf, workload_to_json_round_trips);
    tcase_add_test(tf, workload_error_bad_json);
    tcase_add_test(tf, workload_error_missing_file);
    tcase_add_test(tf, workload_error_wrong_type);
    tcase_add_test(tf, workload_error_out_of_range);
    tcase_add_test(tf, workload_error_unknown_key);
    tcase_add_test(tf, workload_error_missing_field);
    tcase_add_test(tf, workload_error_duplicate_key);
    suite_add_tcase(s, tf);

    tcase_add_checked_fixture(tb, setup, teardown);
    tcase_set_timeout(tb, 60);
    tcase_add_test(tb, workload_build_counts_exact);
    tcase_add_test(tb, workload_build_counts_edge_shapes);
    tcase_add_test(tb, workload_build_counts_tiny_scale);
    tcase_add_test(tb, workload_build_deterministic);
    tcase_add_test(tb, workload_build_rejects_bad_scale);
    tcase_add_test(tb, workload_build_collected_leaves_heap_old);
    tcase_add_test(tb, workload_finalize_leaves_nothing);
    tcase_add_test(tb, workload_build_import_leaves_collector_midway);
    tcase_add_test(tb, workload_build_out_of_memory);
    suite_add_tcase(s, tb);

    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_set_timeout(tr, 60);
    tcase_add_test(tr, workload_routes_serve_json);
    tcase_add_test(tr, workload_walk_depth_and_hot);
    tcase_add_test(tr, workload_unknown_route_404);
    tcase_add_test(tr, workload_response_is_runtime_objects);
    tcase_add_test(tr, workload_response_json_escapes);
    tcase_add_test(tr, workload_query_overrides);
    tcase_add_test(tr, workload_reads_leave_refcounts);
    tcase_add_test(tr, workload_retention_bounded);
    tcase_add_test(tr, workload_cycles_need_the_gc);
    tcase_add_test(tr, workload_request_out_of_memory);
    suite_add_tcase(s, tr);

    return ts_run_suite(s);
}
