/*
 * webapp.c -- builds the heap a web app's import leaves behind, in the
 * master, from a workload's "heap" section (API: workload.h; requests on
 * it: wl_request.c).
 *
 * What it makes, in build order (the order decides which objects share a
 * page, as import order does in CPython):
 *   names      fixed interned identifiers ("__name__", "GET", ...)
 *   pool       S interned identifiers ("get_user_17"): dict keys and
 *              function names everywhere, so each one is referenced from
 *              many pages (the hottest refcounts after the singletons)
 *   libraries  modules "lib.<a>.<b>_N", each with a globals dict holding
 *              classes (method dicts of functions with a code blob and the
 *              module's globals: a cycle, as in CPython), module-level
 *              functions and constants
 *   settings   module app.settings: dicts of atoms, which stay untracked
 *   models     module app.models: Field kinds, Model, model classes whose
 *              field instances point back at their model (cycles), and
 *              model instances with __dict__ or __slots__ that refer to
 *              earlier instances
 *   urls       module app.urls: urlpatterns, a list of (path, handler,
 *              methods) tuples; the handlers are library functions
 *   templates  module app.templates: trees of dicts/lists of strings
 * Every object is recorded in a malloc'd index (so a request picks one in
 * O(1)); the hot set is the names, module objects and globals, settings,
 * the URL table and the first tenth of the pool.  Everything hangs off
 * sys.modules or the interned dict, so finalization reaches it all.
 *
 * Counts are exact (wl_spec_objects() states the formula): the PRNG picks
 * contents (which identifier, a code blob's length, a value), never how
 * many objects a step makes; texts carry an index so none is interned
 * twice by accident.
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gc.h"
#include "mem.h"
#include "wl_app.h"

/* wl_spec_objects()'s documented constant (workload.h). */
_Static_assert(WL_FIXED_OBJECTS == 99, "update the formula in workload.h");

#define HOT_POOL_DIVISOR 10     /* the first 1/10 of the pool is hot */
#define CODE_SCRATCH     65536  /* random "bytecode" code blobs copy from */

static const char *const words[] = {
    "get", "set", "user", "item", "order", "cart", "view", "model", "form",
    "field", "query", "cache", "auth", "token", "page", "list", "detail",
    "create", "update", "delete", "save", "load", "render", "parse",
    "init", "config", "session", "request", "response", "handler",
    "route", "url", "path", "admin", "api", "db", "sql", "json", "html",
    "static", "media", "log", "event", "task", "queue", "worker", "mail",
    "search", "index", "filter", "sort", "count", "price", "title",
    "status", "date", "time", "key", "value", "meta", "data", "type",
    "account", "profile", "group", "perm", "signal", "middleware",
};
#define N_WORDS (sizeof words / sizeof words[0])

static const char *const field_kinds[] = { "CharField", "IntegerField",
                                           "ForeignKey", "DateTimeField" };

static const char *const name_texts[] = {
#define WL_NAME_TEXT(id, text) text,
    WL_NAMES(WL_NAME_TEXT)
#undef WL_NAME_TEXT
};

/* The builder's state; app->index grows as objects are made. */
typedef struct build {
    rt_heap_t *h;
    const wl_heap_spec_t *hs;
    wl_app_t *app;
    double scale;
    uint64_t rng;
    size_t cap, hotcap;
    size_t containers;
    rt_obj_t **handlers;        /* library functions, for urlpatterns */
    size_t nhandlers, handcap;
    uint8_t *code;              /* random bytes, code blobs copy from */
    size_t codelen;
    rt_obj_t *models_mod_name;  /* "app.models", for __module__ */
} build_t;

/* sc(n): a count times the scale, at least 1 unless n is 0. */
static size_t
scaled(long n, double scale)
{
    double x;

    if (n <= 0)
        return 0;
    x = (double)n * scale + 0.5;
    return x < 1.0 ? 1 : (size_t)x;
}

static size_t
pool_size(const wl_heap_spec_t *hs, double scale)
{
    size_t s = scaled(hs->interned_strings, scale);
    size_t need = (size_t)wl__names_needed(hs);

    return s > need ? s : need;
}

size_t
wl_spec_objects(const wl_spec_t *s, double scale)
{
    const wl_heap_spec_t *h = &s->heap;
    size_t c = (size_t)h->classes_per_module;
    size_t m = (size_t)h->methods_per_class;
    size_t fn = (size_t)h->functions_per_module;
    size_t n = (size_t)h->config_keys;
    size_t f = (size_t)h->template_fanout, d, level = 1, internal = 0;
    size_t a = (size_t)h->instance_attrs;
    size_t nmod = scaled(h->modules, scale);
    size_t nmodels = scaled(h->models, scale);
    size_t total = WL_FIXED_OBJECTS + pool_size(h, scale);

    if (nmod > 0 && c * m + fn > 0)
        total += 1;                     /* "x", a code's local name ("n",
                                           the other, is a builder name) */
    total += nmod * (3 + (c > 0 ? 9 + 7 * (c - 1) + (c > 1) : 0)
                     + c * (6 * m + m / 3) + 6 * fn
                     + (size_t)h->constants_per_module);
    total += scaled(h->config_dicts, scale) * (2 + n - n / 4);
    total += scaled(h->url_patterns, scale) * 3;
    for (d = 0; d < (size_t)h->template_depth; d++) {
        internal += level;
        level *= f;
    }
    total += scaled(h->templates, scale) * (2 * internal + level);
    if (nmodels > 0)
        total += 2 + nmodels * (17 + a + 2 * (size_t)h->fields_per_model);
    total += scaled(h->instances, scale) * (1 + (a + 3) / 4 + (a + 2) / 4);
    return total;
}

/* ---- recording -------------------------------------------------------- */

static int
grow(rt_obj_t ***v, size_t *cap, size_t n)
{
    rt_obj_t **nv;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 4096;
    if ((nv = realloc(*v, ncap * sizeof *nv)) == NULL)
        return -ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* Record a new object in the index (and count it if GC-able); o may be
 * NULL, which is how an allocation failure reaches the caller. */
static rt_obj_t *
keep(build_t *b, rt_obj_t *o)
{
    wl_app_t *app = b->app;

    if (o == NULL || grow(&app->index, &b->cap, app->n) < 0)
        return NULL;
    app->index[app->n++] = o;
    if (rt_is_gc(o))
        b->containers++;
    return o;
}

static int
hot(build_t *b, rt_obj_t *o)
{
    wl_app_t *app = b->app;

    if (grow(&app->hot, &b->hotcap, app->nhot) < 0)
        return -ENOMEM;
    app->hot[app->nhot++] = o;
    return 0;
}

/* d[k] = v, taking the caller's reference to v (not to k). */
static int
put(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    int rc;

    if (v == NULL)
        return -ENOMEM;
    rc = rt_dict_set(d, k, v);
    rt_decref(v);
    return rc < 0 ? -ENOMEM : 0;
}

/* d[k] = v, both borrowed. */
static int
put_borrowed(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    return rt_dict_set(d, k, v) < 0 ? -ENOMEM : 0;
}

static rt_obj_t *
pool(build_t *b, size_t i)
{
    return wl__pool(b->app, i);
}

static size_t
pick(build_t *b, size_t n)
{
    return n ? (size_t)(wl__rand(&b->rng) % n) : 0;
}

static const char *
word(build_t *b)
{
    return words[pick(b, N_WORDS)];
}

/* A fresh (not interned) string of random lowercase text. */
static rt_obj_t *
text_new(build_t *b, size_t minlen, size_t maxlen)
{
    char buf[128];
    size_t n = minlen + pick(b, maxlen - minlen + 1), i;

    if (n > sizeof buf)
        n = sizeof buf;
    static const char alphabet[64] =
        "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz etaoinsrh.";

    for (i = 0; i < n; i += 10) {       /* 6 bits a character */
        uint64_t r = wl__rand(&b->rng);
        size_t j;

        for (j = i; j < i + 10 && j < n; j++, r >>= 6)
            buf[j] = alphabet[r & 63];
    }
    return keep(b, rt_str_new(b->h, buf, n));
}

/* An int no small-int singleton stands for. */
static rt_obj_t *
int_new(build_t *b)
{
    return keep(b, rt_int_new(b->h, 1000 + (int64_t)pick(b, 1000000000)));
}

/* ---- the pieces ------------------------------------------------------- */

/* A module registered in sys.modules (borrowed: sys.modules holds it). */
static rt_obj_t *
module(build_t *b, const char *name)
{
    rt_obj_t *m = rt_module_new(b->h, name), *d;

    if (m == NULL)
        return NULL;
    rt_decref(m);                       /* sys.modules keeps it alive */
    d = rt_module_dict(m);
    if (keep(b, m) == NULL || keep(b, d) == NULL
        || keep(b, rt_dict_get(d, b->app->names[WL_N_DUNDER_NAME])) == NULL
        || hot(b, m) < 0 || hot(b, d) < 0)
        return NULL;
    return m;
}

/* The module's name string (borrowed). */
static rt_obj_t *
module_name(build_t *b, rt_obj_t *m)
{
    return rt_dict_get(rt_module_dict(m), b->app->names[WL_N_DUNDER_NAME]);
}

/* A class named name deriving from base (or nothing); new reference. */
static rt_obj_t *
class_new(build_t *b, const char *name, rt_obj_t *base)
{
    rt_obj_t *bases = NULL, *c;

    if (base != NULL) {
        if ((bases = keep(b, rt_tuple_new(b->h, 1))) == NULL)
            return NULL;
        rt_incref(base);
        rt_tuple_set_steal(bases, 0, base);
    }
    c = rt_class_new(b->h, name, bases);
    rt_xdecref(bases);
    if (c == NULL)
        return NULL;
    if (keep(b, c) == NULL || keep(b, rt_class_name(c)) == NULL) {
        rt_decref(c);
        return NULL;
    }
    return c;
}

/* A __slots__ class named name deriving from base, with slots names (a
 * tuple, borrowed); new reference. */
static rt_obj_t *
slots_class_new(build_t *b, const char *name, rt_obj_t *base,
                rt_obj_t *names)
{
    rt_obj_t *bases = NULL, *c;

    if (base != NULL) {
        if ((bases = rt_tuple_new(b->h, 1)) == NULL)
            return NULL;
        rt_incref(base);
        rt_tuple_set_steal(bases, 0, base);
    }
    if (bases != NULL && keep(b, bases) == NULL) {
        rt_decref(bases);
        return NULL;
    }
    c = rt_class_new_slots(b->h, name, bases, names);
    rt_xdecref(bases);
    if (c == NULL)
        return NULL;
    if (keep(b, c) == NULL || keep(b, rt_class_name(c)) == NULL) {
        rt_decref(c);
        return NULL;
    }
    return c;
}

/* A function with a code object whose bytecode stands in a blob of about
 * code_bytes (its first constant); new reference. */
static rt_obj_t *
function_new(build_t *b, rt_obj_t *name, rt_obj_t *globals)
{
    size_t cb = (size_t)b->hs->code_bytes;
    size_t len = cb / 2 + pick(b, cb + 1);
    size_t off = pick(b, b->codelen - len + 1);
    rt_obj_t *blob = keep(b, rt_bytes_new(b->h, b->code + off, len));
    rt_obj_t *code, *f;

    if (blob == NULL)
        return NULL;
    code = keep(b, rt_code_new(b->h, name, blob));
    rt_decref(blob);                    /* its constants tuple holds it */
    if (code == NULL)
        return NULL;
    f = rt_function_new(b->h, name, code, globals);
    rt_decref(code);
    return keep(b, f);
}

static int
build_names(build_t *b)
{
    size_t i;

    for (i = 0; i < WL_N_COUNT; i++) {
        rt_obj_t *s = rt_str_intern(b->h, name_texts[i],
                                    strlen(name_texts[i]));

        if (keep(b, s) == NULL || hot(b, s) < 0)
            return -ENOMEM;
        rt_decref(s);                   /* the interned dict holds it */
        b->app->names[i] = s;
    }
    return 0;
}

static int
build_pool(build_t *b)
{
    size_t n = pool_size(b->hs, b->scale), i;
    size_t nhot = n / HOT_POOL_DIVISOR ? n / HOT_POOL_DIVISOR : 1;
    char buf[96];

    b->app->pool_start = b->app->n;
    for (i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "%s_%s_%zu", word(b), word(b),
                           i);
        rt_obj_t *s = rt_str_intern(b->h, buf, (size_t)len);

        if (keep(b, s) == NULL || (i < nhot && hot(b, s) < 0))
            return -ENOMEM;
        rt_decref(s);
    }
    b->app->npool = n;
    return 0;
}

/* One class of a library module: methods in its dict; new reference. */
static rt_obj_t *
library_class(build_t *b, rt_obj_t *globals, rt_obj_t *mname,
              rt_obj_t *base, size_t serial)
{
    rt_heap_t *h = b->h;
    char name[96];
    const char *w1 = word(b), *w2 = word(b);
    size_t j, first = pick(b, b->app->npool);
    rt_obj_t *c, *cd;

    snprintf(name, sizeof name, "%c%s%c%s%zu", w1[0] - 32, w1 + 1,
             w2[0] - 32, w2 + 1, serial);
    if ((c = class_new(b, name, base)) == NULL)
        return NULL;
    cd = rt_class_dict(c);
    if (put_borrowed(cd, b->app->names[WL_N_DUNDER_MODULE], mname) < 0)
        goto error;
    for (j = 0; j < (size_t)b->hs->methods_per_class; j++) {
        rt_obj_t *fname = pool(b, first + j);
        rt_obj_t *f = function_new(b, fname, globals), *defs;

        if (f == NULL)
            goto error;
        if (j % 3 == 2) {               /* def m(self, x=None, n=<j>) */
            if ((defs = keep(b, rt_tuple_new(h, 2))) == NULL) {
                rt_decref(f);
                goto error;
            }
            rt_incref(rt_none(h));
            rt_tuple_set_steal(defs, 0, rt_none(h));
            rt_tuple_set_steal(defs, 1, rt_int_new(h, (int64_t)(j % 256)));
            rt_function_set_defaults(f, defs);
            rt_decref(defs);
        }
        if (put(cd, fname, f) < 0)
            goto error;
    }
    return c;

error:
    rt_decref(c);
    return NULL;
}

static int
build_libraries(build_t *b)
{
    const wl_heap_spec_t *hs = b->hs;
    size_t nmod = scaled(hs->modules, b->scale), i, j, serial = 0;
    char name[128];

    for (i = 0; i < nmod; i++) {
        rt_obj_t *m, *g, *mname, *first = NULL;
        size_t kbase = pick(b, b->app->npool);

        snprintf(name, sizeof name, "lib.%s.%s_%zu", word(b), word(b), i);
        if ((m = module(b, name)) == NULL)
            return -ENOMEM;
        g = rt_module_dict(m);
        mname = module_name(b, m);
        for (j = 0; j < (size_t)hs->classes_per_module; j++) {
            rt_obj_t *c = library_class(b, g, mname, first, serial++);

            if (c == NULL || put_borrowed(g, rt_class_name(c), c) < 0) {
                rt_xdecref(c);
                return -ENOMEM;
            }
            if (first == NULL)
                first = c;              /* the others derive from it */
            rt_decref(c);               /* g holds it */
        }
        for (j = 0; j < (size_t)hs->functions_per_module; j++) {
            rt_obj_t *fname = pool(b, kbase + j);
            rt_obj_t *f = function_new(b, fname, g);

            if (f == NULL || grow(&b->handlers, &b->handcap,
                                  b->nhandlers) < 0) {
                rt_xdecref(f);
                return -ENOMEM;
            }
            b->handlers[b->nhandlers++] = f;
            if (put(g, fname, f) < 0)
                return -ENOMEM;
        }
        for (j = 0; j < (size_t)hs->constants_per_module; j++) {
            rt_obj_t *key = pool(b, kbase + (size_t)hs->functions_per_module
                                 + j), *v;

            if (j % 3 == 0)
                v = int_new(b);
            else if (j % 3 == 1)
                v = text_new(b, 4, 40);
            else
                v = keep(b, rt_float_new(b->h, wl__unit(&b->rng) * 1e3));
            if (put(g, key, v) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int
build_settings(build_t *b)
{
    rt_heap_t *h = b->h;
    size_t n = scaled(b->hs->config_dicts, b->scale), i, k;
    rt_obj_t *m = module(b, "app.settings"), *g, *d = NULL, *key = NULL;
    char name[64];

    if (m == NULL)
        return -ENOMEM;
    g = rt_module_dict(m);
    for (i = 0; i < n; i++) {
        size_t kbase = pick(b, b->app->npool);
        int len;

        if ((d = keep(b, rt_dict_new(h))) == NULL || hot(b, d) < 0)
            goto error;
        for (k = 0; k < (size_t)b->hs->config_keys; k++) {
            rt_obj_t *v;

            switch (k % 4) {
            case 0: v = text_new(b, 4, 40); break;
            case 1: v = int_new(b); break;
            case 2: v = keep(b, rt_float_new(h, wl__unit(&b->rng))); break;
            default:                    /* no object: a singleton */
                v = pick(b, 3) == 0 ? rt_none(h)
                    : pick(b, 2) ? rt_true(h) : rt_false(h);
                rt_incref(v);
                break;
            }
            if (put(d, pool(b, kbase + k), v) < 0)
                goto error;
        }
        len = snprintf(name, sizeof name, "SETTING_%zu", i);
        key = keep(b, rt_str_intern(h, name, (size_t)len));
        if (key == NULL || hot(b, key) < 0 || put_borrowed(g, key, d) < 0)
            goto error;
        rt_decref(key);
        rt_decref(d);
        key = d = NULL;
    }
    return 0;

error:
    rt_xdecref(key);
    rt_xdecref(d);
    return -ENOMEM;
}

/* A model: class with field instances pointing back at it, and its
 * __slots__ twin (named <model>Slots, deriving from SlotModel, with slots
 * named as the model's instance attributes); borrowed (the module's
 * globals hold them). */
static rt_obj_t *
build_model(build_t *b, rt_obj_t *g, rt_obj_t *model_base,
            rt_obj_t *slot_base, rt_obj_t *const *kinds, size_t serial,
            size_t *fbase, rt_obj_t **instances, rt_obj_t **slot_class)
{
    rt_heap_t *h = b->h;
    rt_obj_t **names = b->app->names, *c, *cd, *fields, *insts, *sc = NULL;
    rt_obj_t *attrs = NULL;
    const char *w1 = word(b), *w2 = word(b);
    char name[96], sname[112];
    size_t k, nattr = (size_t)b->hs->instance_attrs;

    snprintf(name, sizeof name, "%c%s%c%s%zu", w1[0] - 32, w1 + 1,
             w2[0] - 32, w2 + 1, serial);
    snprintf(sname, sizeof sname, "%sSlots", name);
    *fbase = pick(b, b->app->npool);
    if ((fields = keep(b, rt_list_new(h))) == NULL)
        return NULL;
    if ((c = class_new(b, name, model_base)) == NULL) {
        rt_decref(fields);
        return NULL;
    }
    cd = rt_class_dict(c);
    if (put_borrowed(cd, names[WL_N_DUNDER_MODULE], b->models_mod_name) < 0
        || put(cd, names[WL_N_FIELDS], fields) < 0)
        goto error;
    if ((attrs = rt_tuple_new(h, nattr)) == NULL)
        goto error;
    for (k = 0; k < nattr; k++) {
        rt_obj_t *an = pool(b, *fbase + k);

        rt_incref(an);
        rt_tuple_set_steal(attrs, k, an);
    }
    sc = slots_class_new(b, sname, slot_base, attrs);
    rt_decref(attrs);
    if (sc == NULL
        || put_borrowed(rt_class_dict(sc), names[WL_N_DUNDER_MODULE],
                        b->models_mod_name) < 0)
        goto error;
    for (k = 0; k < (size_t)b->hs->fields_per_model; k++) {
        rt_obj_t *fname = pool(b, *fbase + k);
        rt_obj_t *fld = keep(b, rt_instance_new(h, kinds[k % 4]));
        char col[128];
        int r;

        if (fld == NULL)
            goto error;
        snprintf(col, sizeof col, "%s_%s", rt_str_data(rt_class_name(c)),
                 rt_str_data(fname));
        r = rt_instance_setattr(fld, names[WL_N_NAME], fname) < 0
            || rt_instance_setattr(fld, names[WL_N_MODEL], c) < 0; /* cycle */
        if (r == 0) {
            rt_obj_t *cs = keep(b, rt_str_from(h, col)), *ml;

            r = cs == NULL || rt_instance_setattr(fld, names[WL_N_COLUMN],
                                                  cs) < 0;
            rt_xdecref(cs);
            ml = rt_int_new(h, 255);
            r = r || rt_instance_setattr(fld, names[WL_N_MAX_LENGTH],
                                         ml) < 0;
            rt_decref(ml);
        }
        if (r != 0 || rt_list_append(fields, fld) < 0
            || put(cd, fname, fld) < 0)
            goto error;
    }
    if ((insts = keep(b, rt_list_new(h))) == NULL
        || put(cd, names[WL_N_INSTANCES], insts) < 0
        || put_borrowed(g, rt_class_name(c), c) < 0
        || put_borrowed(g, rt_class_name(sc), sc) < 0)
        goto error;
    *instances = insts;
    *slot_class = sc;
    rt_decref(sc);
    rt_decref(c);
    return c;

error:
    rt_xdecref(sc);
    rt_decref(c);
    return NULL;
}

/* Model instances: __slots__ (of the model's Slots twin) for
 * slots_percent of them, plain (attributes in a values block) for the
 * rest; attribute k is an int, a fresh str, a pool identifier or an
 * earlier instance (k % 4). */
static int
build_instances(build_t *b, rt_obj_t **models, rt_obj_t **slot_classes,
                rt_obj_t **lists, const size_t *fbase, size_t nmodels)
{
    rt_heap_t *h = b->h;
    size_t n = scaled(b->hs->instances, b->scale), i, k;
    size_t nattr = (size_t)b->hs->instance_attrs;
    rt_obj_t **made, *o = NULL;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    if ((made = malloc(n * sizeof *made)) == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        size_t mi = i % nmodels;
        int slotted = (long)(i % 100) < b->hs->slots_percent;

        if (slotted)
            o = keep(b, rt_slots_new(h, slot_classes[mi]));
        else
            o = keep(b, rt_instance_new(h, models[mi]));
        if (o == NULL)
            goto out;
        for (k = 0; k < nattr; k++) {
            rt_obj_t *v;
            int r;

            switch (k % 4) {
            case 0: v = int_new(b); break;
            case 1: v = text_new(b, 3, 24); break;
            case 2:
                v = pool(b, pick(b, b->app->npool));
                rt_incref(v);
                break;
            default:
                v = i > 0 ? made[pick(b, i)] : rt_none(h);
                rt_incref(v);
                break;
            }
            if (v == NULL)
                goto out_o;
            r = slotted ? rt_slots_set(o, k, v)
                        : rt_instance_setattr(o, pool(b, fbase[mi] + k), v);
            rt_decref(v);
            if (r < 0)
                goto out_o;
        }
        if (rt_list_append(lists[mi], o) < 0)
            goto out_o;
        made[i] = o;
        rt_decref(o);                   /* its model's list holds it */
    }
    rc = 0;
    goto out;

out_o:
    rt_decref(o);
out:
    free(made);
    return rc;
}

static int
build_models(build_t *b)
{
    size_t nmodels = scaled(b->hs->models, b->scale), i;
    rt_obj_t *m = module(b, "app.models"), *g, *field, *model = NULL;
    rt_obj_t *slot_model = NULL, *empty = NULL;
    rt_obj_t *kinds[4] = { NULL, NULL, NULL, NULL };
    rt_obj_t **models = NULL, **lists = NULL, **slots = NULL;
    size_t *fbase = NULL;
    int rc = -ENOMEM;

    if (m == NULL)
        return -ENOMEM;
    g = rt_module_dict(m);
    b->models_mod_name = module_name(b, m);
    if ((field = class_new(b, "Field", NULL)) == NULL)
        return -ENOMEM;
    rc = put_borrowed(g, rt_class_name(field), field);
    for (i = 0; i < 4 && rc == 0; i++) {
        if ((kinds[i] = class_new(b, field_kinds[i], field)) == NULL)
            rc = -ENOMEM;
        else
            rc = put_borrowed(g, rt_class_name(kinds[i]), kinds[i]);
    }
    if (rc == 0 && (model = class_new(b, "Model", NULL)) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && ((empty = rt_tuple_new(b->h, 0)) == NULL
                    || (slot_model = slots_class_new(b, "SlotModel", NULL,
                                                     empty)) == NULL))
        rc = -ENOMEM;
    if (rc == 0)
        rc = put_borrowed(g, rt_class_name(model), model);
    if (rc == 0)
        rc = put_borrowed(g, rt_class_name(slot_model), slot_model);
    if (rc == 0 && nmodels > 0) {
        models = malloc(nmodels * sizeof *models);
        lists = malloc(nmodels * sizeof *lists);
        slots = malloc(nmodels * sizeof *slots);
        fbase = malloc(nmodels * sizeof *fbase);
        rc = models && lists && slots && fbase ? 0 : -ENOMEM;
    }
    for (i = 0; i < nmodels && rc == 0; i++)
        if ((models[i] = build_model(b, g, model, slot_model, kinds, i,
                                     &fbase[i], &lists[i], &slots[i]))
            == NULL)
            rc = -ENOMEM;
    if (rc == 0 && nmodels > 0)
        rc = build_instances(b, models, slots, lists, fbase, nmodels);
    free(models);
    free(lists);
    free(slots);
    free(fbase);
    rt_xdecref(model);
    rt_xdecref(slot_model);
    rt_xdecref(empty);
    for (i = 0; i < 4; i++)
        rt_xdecref(kinds[i]);
    rt_decref(field);
    return rc;
}

static int
build_urls(build_t *b)
{
    rt_heap_t *h = b->h;
    rt_obj_t **names = b->app->names;
    size_t n = scaled(b->hs->url_patterns, b->scale), i;
    rt_obj_t *m = module(b, "app.urls"), *list;
    char path[160];

    if (m == NULL || (list = keep(b, rt_list_new(h))) == NULL
        || hot(b, list) < 0
        || put(rt_module_dict(m), names[WL_N_URLPATTERNS], list) < 0)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        size_t nm = 1 + i % 2;          /* ("GET",) or ("GET", "POST") */
        rt_obj_t *t = keep(b, rt_tuple_new(h, 3)), *p, *meth, *hd;
        int len;

        if (t == NULL || hot(b, t) < 0) {
            rt_xdecref(t);
            return -ENOMEM;
        }
        len = snprintf(path, sizeof path, "^%s/%s/(?P<%s_id>[0-9]+)/%zu/$",
                       word(b), word(b), word(b), i);
        p = keep(b, rt_str_new(h, path, (size_t)len));
        meth = keep(b, rt_tuple_new(h, nm));
        if (p != NULL)
            rt_tuple_set_steal(t, 0, p);
        if (meth != NULL) {
            rt_incref(names[WL_N_GET]);
            rt_tuple_set_steal(meth, 0, names[WL_N_GET]);
            if (nm == 2) {
                rt_obj_t *other = names[i % 4 == 1 ? WL_N_POST
                                        : i % 4 == 3 ? WL_N_PUT
                                                     : WL_N_DELETE];

                rt_incref(other);
                rt_tuple_set_steal(meth, 1, other);
            }
            rt_tuple_set_steal(t, 2, meth);
        }
        hd = b->nhandlers ? b->handlers[pick(b, b->nhandlers)] : rt_none(h);
        rt_incref(hd);
        rt_tuple_set_steal(t, 1, hd);
        if (p == NULL || meth == NULL || hot(b, p) < 0 || hot(b, meth) < 0) {
            rt_decref(t);
            return -ENOMEM;
        }
        if (rt_list_append_steal(list, t) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* A template node at depth d: a {"tag", "children"} dict, or a string at
 * the bottom; new reference. */
static rt_obj_t *
template_node(build_t *b, size_t d)
{
    rt_heap_t *h = b->h;
    rt_obj_t *node, *children;
    size_t i;

    if (d == (size_t)b->hs->template_depth)
        return text_new(b, 8, 80);
    if ((node = keep(b, rt_dict_new(h))) == NULL)
        return NULL;
    if (put_borrowed(node, b->app->names[WL_N_TAG],
                     pool(b, pick(b, b->app->npool))) < 0
        || (children = keep(b, rt_list_new(h))) == NULL
        || put(node, b->app->names[WL_N_CHILDREN], children) < 0)
        goto error;
    for (i = 0; i < (size_t)b->hs->template_fanout; i++) {
        rt_obj_t *c = template_node(b, d + 1);

        if (c == NULL || rt_list_append_steal(children, c) < 0)
            goto error;
    }
    return node;

error:
    rt_decref(node);
    return NULL;
}

static int
build_templates(build_t *b)
{
    size_t n = scaled(b->hs->templates, b->scale), i;
    rt_obj_t *m = module(b, "app.templates"), *list;

    if (m == NULL || (list = keep(b, rt_list_new(b->h))) == NULL
        || put(rt_module_dict(m), b->app->names[WL_N_TEMPLATES], list) < 0)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        rt_obj_t *t = template_node(b, 0);

        if (t == NULL || rt_list_append_steal(list, t) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- the app ---------------------------------------------------------- */

static size_t
heap_bytes(void)
{
    mem_stats_t ms;

    mem_get_stats(&ms);
    return ms.bytes_in_use + ms.large_bytes;
}

static int
copy_routes(wl_app_t *app, const wl_spec_t *s)
{
    size_t i;

    app->routes = calloc(s->nroutes, sizeof *app->routes);
    app->state = calloc(s->nroutes, sizeof *app->state);
    if (app->routes == NULL || app->state == NULL)
        return -ENOMEM;
    for (i = 0; i < s->nroutes; i++) {
        app->routes[i] = s->routes[i];
        app->routes[i].path = strdup(s->routes[i].path);
        app->nroutes = i + 1;
        if (app->routes[i].path == NULL)
            return -ENOMEM;
    }
    return 0;
}

int
wl_build(rt_heap_t *h, const wl_spec_t *s, double scale, uint64_t seed,
         wl_app_t **out, wl_build_stats_t *st)
{
    return wl_build_gc(h, s, scale, seed, WL_GC_IMPORT, out, st);
}

int
wl_build_gc(rt_heap_t *h, const wl_spec_t *s, double scale, uint64_t seed,
            wl_gc_t gc, wl_app_t **out, wl_build_stats_t *st)
{
    build_t b;
    wl_app_t *app;
    size_t objects0 = rt_heap_objects(h), bytes0 = heap_bytes(), i;
    double t0 = clk_now_ms();
    long th[GC_NGENS];
    int paused, rc;

    if (!(scale > 0 && scale <= 1000))
        return -EINVAL;
    if ((app = calloc(1, sizeof *app)) == NULL)
        return -ENOMEM;
    memset(&b, 0, sizeof b);
    b.h = h;
    b.hs = &s->heap;
    b.app = app;
    b.scale = scale;
    b.rng = seed;
    app->h = h;
    app->rng = seed ^ 0x5eed5eed5eed5eedULL;
    if ((rc = copy_routes(app, s)) < 0)
        goto error;
    b.codelen = (size_t)s->heap.code_bytes * 3 / 2 + 1;
    if (b.codelen < CODE_SCRATCH)
        b.codelen = CODE_SCRATCH;
    if ((b.code = malloc(b.codelen)) == NULL) {
        rc = -ENOMEM;
        goto error;
    }
    for (i = 0; i < b.codelen; i++)
        b.code[i] = (uint8_t)wl__rand(&b.rng);
    /* WL_GC_IMPORT: the collector runs by its thresholds all along, as
     * during CPython's import, and leaves generations 0 and 1 and the
     * long-lived pending count as they fall.  WL_GC_COLLECTED: automatic
     * collection pauses and one full collection ends the build, leaving
     * every survivor in the oldest generation and nothing pending (the
     * best case: the first full collection in a worker comes as late as
     * it can).  With the collector off (disabled or threshold 0) the
     * objects stay in generation 0 either way, as they would in CPython. */
    gc_get_threshold(th);
    paused = gc == WL_GC_COLLECTED && gc_isenabled() && th[0] > 0;
    if (paused)
        gc_disable();
    rc = build_names(&b);
    if (rc == 0)
        rc = build_pool(&b);
    if (rc == 0)
        rc = build_libraries(&b);
    if (rc == 0)
        rc = build_settings(&b);
    if (rc == 0)
        rc = build_models(&b);
    if (rc == 0)
        rc = build_urls(&b);
    if (rc == 0)
        rc = build_templates(&b);
    if (paused) {
        gc_enable();
        gc_collect(GC_GEN_OLDEST);
    }
    if (rc < 0)
        goto error;
    free(b.code);
    free(b.handlers);
    if (st != NULL) {
        st->objects = rt_heap_objects(h) - objects0;
        st->containers = b.containers;
        st->hot = app->nhot;
        st->heap_bytes = heap_bytes() - bytes0;
        st->build_ms = clk_now_ms() - t0;
    }
    *out = app;
    return 0;

error:
    free(b.code);
    free(b.handlers);
    wl_app_free(app);
    return rc;
}

void
wl_app_free(wl_app_t *app)
{
    size_t i;

    if (app == NULL)
        return;
    for (i = 0; i < app->nroutes; i++)
        free(app->routes[i].path);
    free(app->routes);
    free(app->state);
    free(app->index);
    free(app->hot);
    free(app);
}

void
wl_app_seed(wl_app_t *app, uint64_t seed)
{
    app->rng = seed ^ 0x5eed5eed5eed5eedULL;
}

size_t
wl_app_objects(const wl_app_t *app)
{
    return app->n;
}

rt_obj_t *
wl_app_object(const wl_app_t *app, size_t i)
{
    return i < app->n ? app->index[i] : NULL;
}

size_t
wl_route_count(const wl_app_t *app)
{
    return app->nroutes;
}

const char *
wl_route_path(const wl_app_t *app, size_t i)
{
    return i < app->nroutes ? app->routes[i].path : NULL;
}
