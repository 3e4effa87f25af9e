/*
 * workload.h -- what the workers serve: a workload description (JSON,
 * validated), the heap it builds in the master, and the request handler.
 *
 * The format (workloads/webapp.json is the default and spells every key;
 * a key left out takes the default shown; unknown keys are errors):
 *   "name"          string [A-Za-z0-9._-]{1,64}; default: the file's name
 *   "description"   string, optional
 *   "heap": what a web app's import leaves; counts marked * are multiplied
 *   by the build's scale (at least 1 unless 0), the rest are shapes:
 *     interned_strings*     50000  identifier pool (rt_str_intern): dict
 *                                  keys, function names; >= the most keys
 *                                  one dict below takes from it
 *     modules*               1500  library modules, each with globals
 *     classes_per_module        8  classes: a method dict each; all but
 *                                  the first derive from the first
 *     methods_per_class         8  functions (code blob + the module's
 *                                  globals); every 3rd has defaults
 *     functions_per_module     16  module-level functions (URL handlers)
 *     constants_per_module     24  int/str/float globals
 *     code_bytes              160  mean code blob (bytes, 0.5x to 1.5x)
 *     config_dicts*           400  app.settings dicts of atoms (untracked)
 *     config_keys              24  keys per config dict
 *     url_patterns*          2000  app.urls: (path, handler, methods)
 *     templates*             1000  app.templates: trees of dicts/lists
 *     template_depth            4  levels of dict nodes above the strings
 *     template_fanout           3  children per node
 *     models*                 300  app.models classes
 *     fields_per_model         12  field instances, each -> its model
 *     instances*            75000  model instances (model i % models)
 *     instance_attrs            6  attributes: int, str, identifier, or a
 *                                  reference to an earlier instance (at
 *                                  most 29: a class's shared keys)
 *     slots_percent            50  of instances, __slots__ (else __dict__)
 *   "objects": any heap shape (objects.c; scripts/heap_census.py writes
 *   it from a live CPython heap).  Optional; a workload may have "heap",
 *   "objects" or both; with "objects" and no "heap", the webapp generator
 *   builds nothing (every scaled "heap" count 0, one pool identifier):
 *     types         {}  objects per kind, scaled: dict list tuple set
 *                       instance slots function class code str int float
 *                       (as CPython makes them, objects.c: a set is a
 *                       dict of None values; code its code object, its
 *                       tuples and a bytes blob; a class type()'s 9
 *                       objects; an instance its attributes inline; a
 *                       slots object of a __slots__ class per bucket)
 *     sizes             per kind, a distribution of items (containers;
 *                       class: dict entries) or bytes (str, code): weights
 *                       of the values 0, 1, 2-3, 4-7, ... (bucket k >= 1:
 *                       2^(k-1) to 2^k - 1), at most 21; defaults small;
 *                       instances: counts per bucket by weight, at most
 *                       29 below bucket 6; slots: the bucket's middle
 *                       value (0, 1, 2, 5, 11, ..., at most 1024)
 *     modules       10  scaled, >= 1: modules whose "__objects__" lists
 *                       hold the roots (objects no item refers to)
 *     interned     0.2  share of str interned (dict keys come from them)
 *     ref_container 0.3 share of items that refer to an earlier container
 *     ref_distance      how far back, in containers: weights of 1, 2-3,
 *                       4-7, ... (bucket k: 2^k to 2^(k+1) - 1)
 *     ref_shared   0.5  share of atom items that refer to an atom made
 *                       earlier (else to a fresh one nothing refers to)
 *     cycle_fraction 0.05 of lists, dicts and classes, in
 *                       cycles (each cycle one strongly connected
 *                       component)
 *     cycle_size        how many of those members are in cycles of 1,
 *                       2-3, 4-7, ... members (weights; first 0)
 *   "routes": 1 to 1024 objects, one per URL path:
 *     path            (required) "/..." matched exactly
 *     reads                     0  shared objects picked and walked
 *     spread                  1.0  fraction of the heap reads draw from
 *     offset                  0.0  where that window starts (+ spread <= 1)
 *     hot                     0.0  fraction of reads from the hot set (the
 *                                  fixed names, modules and globals,
 *                                  settings, URL table, 1/10 of the pool)
 *     walk_depth                1  0: the object; 1: + children; 2: + theirs
 *     walk_width                8  children looked at per level
 *     temporaries               0  containers alive together, then dropped
 *     cyclic_garbage            0  pairs of lists left in a cycle
 *     retain                    0  cache entries kept per request (a list
 *                                  [str, int]: 3 objects)
 *     retain_max            10000  cache entries at most (oldest evicted)
 *     response_items           10  items in the JSON response
 *
 * Errors: functions return 0 or a negative errno; the loaders write
 * "FILE:LINE:COL: field 'routes[2].reads': expected ..., found ..." into
 * err, worded as the config loader words it (common/errmsg.h).
 */
#ifndef COWLAB_WORKLOAD_H
#define COWLAB_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "object.h"

/* ---- the description ---------------------------------------------------- */

typedef struct wl_spec wl_spec_t;       /* parsed, validated workload */

/* Load a workload file; on error *out is untouched and err says why
 * (-ENOENT etc. for an unreadable file, -EINVAL for a bad one).  A path
 * that names no file but an embedded workload ("webapp",
 * "webapp-stateful": every workloads/NAME.json, compiled in) loads that. */
int wl_load_file(const char *path, wl_spec_t **out, char *err,
                 size_t errlen);
/* The same from a NUL-terminated JSON text; `name` stands for the file in
 * messages and names the workload when the text has no "name". */
int wl_load_string(const char *json, const char *name, wl_spec_t **out,
                   char *err, size_t errlen);
/* The embedded default, "webapp" (the text of workloads/webapp.json). */
int wl_load_default(wl_spec_t **out, char *err, size_t errlen);
/* The embedded default's JSON text (static storage). */
const char *wl_default_json(void);
/* The JSON text of the embedded workload called name, or NULL. */
const char *wl_embedded_json(const char *name);
void wl_spec_free(wl_spec_t *s);
/* Every key with its resolved value (defaults filled in), for meta.json;
 * loading its dump gives an equal spec.  NULL when out of memory. */
json_t *wl_spec_to_json(const wl_spec_t *s);
const char *wl_spec_name(const wl_spec_t *s);
/* Its routes, in the order of the JSON (and of wl_route_path()). */
size_t wl_spec_route_count(const wl_spec_t *s);
const char *wl_spec_route_path(const wl_spec_t *s, size_t i);

/*
 * Objects wl_build() creates for this spec at this scale (on a fresh heap:
 * one whose interned strings do not yet include the builder's fixed names).
 * The formula, with sc(n) = 0 if n == 0 else max(1, floor(n * scale + .5))
 * for the counts marked "scaled" in webapp.json, and integer division:
 *   fixed      = 99 (WL_FIXED_OBJECTS in wl_app.h: names, the runtime's
 *                own interned names, the 4 app modules, the model
 *                module's classes, 2 lists)
 *   strings    = S = max(sc(interned_strings), names one dict needs)
 *   code names = 1 ("x", a code's local name; "n" is among the names)
 *                if there is any function
 *   modules    = sc(modules) * (3 + [C > 0] (9 + 7 (C - 1) + [C > 1])
 *                + C * (6 M + M / 3) + 6 F + K)
 *                C classes_per_module, M methods_per_class,
 *                F functions_per_module, K constants_per_module; a root
 *                class is 9 objects, a derived one 7 (see wl_app.h), a
 *                function 6 (blob, code, its consts and local-name
 *                tuples and kinds bytes, the function), every third
 *                method a defaults tuple
 *   config     = sc(config_dicts) * (2 + N - N / 4)        N config_keys
 *   url        = sc(url_patterns) * 3
 *   templates  = sc(templates) * (2 * (f^0 + ... + f^(d-1)) + f^d)
 *                d template_depth, f template_fanout
 *   models     = [sc(models) > 0] * 2 + sc(models) * (17 + A
 *                + 2 * fields_per_model): _fields, the model class (7),
 *                its Slots twin (its slots tuple and bases, 6, and a
 *                member descriptor per slot), _instances; per field an
 *                instance and a column name
 *   instances  = I * (1 + (A + 3) / 4 + (A + 2) / 4)
 *                I = sc(instances), A = instance_attrs: attributes sit in
 *                values blocks, not objects
 *   objects    = 0 without it, else 4 * sc(modules) + 9 + 2
 *                + sum over kinds of sc(types[kind]) * (9 for class,
 *                5 for code, else 1) + D + Z + [X]: objects.c's
 *                wl__objects_count(); D instances with a dict (their
 *                share of sizes in buckets >= 6), Z the __slots__
 *                classes (8 + n each, one per size bucket used) and
 *                their names (the largest n), X "x" if there is code
 *                and the code names line above is 0
 * The sum is what rt_heap_objects() grows by.  The app's index
 * (wl_app_objects) holds the objects a request may pick, a subset: not a
 * class's mro, weakref, descriptors or key, nor a code object's parts.
 */
size_t wl_spec_objects(const wl_spec_t *s, double scale);

/* ---- the built app --------------------------------------------------- */

typedef struct wl_build_stats {
    size_t objects;             /* objects the build added to the heap */
    size_t containers;          /* of those, GC-able (may be tracked) */
    size_t hot;                 /* objects in the hot set */
    double build_ms;            /* wall time of wl_build() */
    size_t heap_bytes;          /* allocator bytes the build added (0 with
                                   RT_MALLOC_BYPASS) */
} wl_build_stats_t;

/* The built app: its roots are modules in sys.modules; the index of its
 * objects (for O(1) picks) is malloc'd, never runtime memory, and is not
 * written after the build, so it shares cleanly across fork(). */
typedef struct wl_app wl_app_t;

/* What the collector does during the build (--prefork-gc). */
typedef enum {
    WL_GC_IMPORT,       /* collect by threshold all along, as an import
                           does: generations 0 and 1 and the long-lived
                           pending count end as they fall */
    WL_GC_COLLECTED     /* pause, then one full collection: every survivor
                           in the oldest generation, nothing pending */
} wl_gc_t;

/* Build the spec's heap in h (every count times scale, (0, 1000]) from a
 * seeded PRNG: the same spec, scale and seed give the same heap, the
 * collector as WL_GC_IMPORT leaves it; with the collector off (disabled
 * or threshold 0) the objects stay in generation 0.  st may be NULL.
 * -EINVAL for a bad scale, -ENOMEM (the objects built so far stay in the
 * heap, reachable from sys.modules). */
int wl_build(rt_heap_t *h, const wl_spec_t *s, double scale, uint64_t seed,
             wl_app_t **out, wl_build_stats_t *st);
/* The same, with the collector's part chosen. */
int wl_build_gc(rt_heap_t *h, const wl_spec_t *s, double scale,
                uint64_t seed, wl_gc_t gc, wl_app_t **out,
                wl_build_stats_t *st);
/* Free the malloc'd index; the heap objects go with the heap, so this may
 * run before or after rt_heap_free()/rt_finalize(). */
void wl_app_free(wl_app_t *app);
/* Reseed the request PRNG (a worker calls it after fork() so that workers
 * do not replay the same reads). */
void wl_app_seed(wl_app_t *app, uint64_t seed);

/* The objects the build made, in build order (borrowed; for tests and
 * census): index i in [0, wl_app_objects()). */
size_t wl_app_objects(const wl_app_t *app);
rt_obj_t *wl_app_object(const wl_app_t *app, size_t i);
/* Entries in the worker-local caches right now (0 before the first
 * request that retains). */
size_t wl_app_cached(const wl_app_t *app);

/* ---- requests ---------------------------------------------------------- */

typedef struct wl_result {
    int status;                 /* 200, 400 (bad query), 404 (no route) */
    char *body;                 /* malloc'd JSON; free() it (or fini) */
    size_t body_len;
    size_t objects_read;        /* shared objects picked and walked */
    size_t objects_touched;     /* incref/decref pairs in all (walks) */
    size_t hot_reads;           /* of objects_read, from the hot set */
    size_t temporaries;         /* containers allocated and dropped */
    size_t cycles_made;         /* cycles left for the GC (2 lists each) */
    size_t retained;            /* cache entries added (3 objects each) */
    size_t evicted;             /* cache entries dropped to make room */
} wl_result_t;

/*
 * Serve one request for `path` (no query string; NULL query = none).  The
 * query may override the route's request knobs for this request, as
 * "reads=10&hot=0.5": keys and ranges as in the route's JSON; an unknown
 * key or bad value gives 400.  An unknown path gives 404.  Both carry a
 * JSON {"error": ...} body.  Returns 0 (res filled, body set) or -ENOMEM
 * (res->body NULL; temporaries already dropped).
 */
int wl_handle(wl_app_t *app, const char *path, const char *query,
              wl_result_t *res);
/* free(res->body) and clear it. */
void wl_result_fini(wl_result_t *res);

size_t wl_route_count(const wl_app_t *app);
const char *wl_route_path(const wl_app_t *app, size_t i);

#endif /* COWLAB_WORKLOAD_H */
