/*
 * objects.c -- builds a workload's generic "objects" section: any heap
 * shape given as a mix of kinds with counts, size distributions, the way
 * items refer to earlier objects, cycles and interning (the format:
 * workload.h; scripts/heap_census.py writes it from a live CPython heap).
 * webapp.c calls wl__objects_build() after its own generator, inside the
 * same collector pause, so both may share one heap.
 *
 * The build, in order:
 *   modules  M modules "objects.mod_N", each with a list "__objects__" in
 *            its globals: the roots (objects nothing else refers to)
 *   slots    one __slots__ class per size bucket the slots kind uses,
 *            with n names "~s0".."~s<n-1>" (interned, shared), n the
 *            bucket's middle value (0, 1, 2, 5, 11, ...; at most
 *            SLOTS_NAMES_MAX)
 *   plan     one entry per object, kinds in a seeded random order (the
 *            order decides which objects share a page, as allocation
 *            order does in CPython); the first code object is moved
 *            before the first function, which needs one.  Each instance
 *            gets its class (one made before it, else the base class)
 *            and its size: the sizes are shared among the buckets by
 *            weight (exact counts), drawn within them (at most
 *            INLINE_MAX below bucket 6) and shuffled; then a class's
 *            first instance swaps sizes with its largest, so that, as
 *            when __init__ sets the same names in every instance, the
 *            first one teaches the class's shared keys every name the
 *            others use (names it picks among the strs made before it:
 *            where there are fewer, its class's instances get fewer
 *            attributes)
 *   objects  in plan order; a container's items (a dict's values, an
 *            instance's attributes, a class's dict entries, slots) refer:
 *              with probability ref_container, to an earlier container
 *              (GC-able kinds), ref_distance containers back;
 *              else to an atom (str, int, float, code): with probability
 *              ref_shared one made earlier (uniformly), else the most
 *              recent atom nothing refers to yet ("fresh");
 *            keys (dict, set, instance, class) are distinct strs made
 *            earlier: interned ones when there are enough, else any
 *   cycles   cycle_fraction of the lists, dicts and classes,
 *            taken in plan order, shared among cycle_size's buckets by
 *            weight and cut into groups of sizes within each bucket:
 *            member i gets one more item, member i + 1 (the last: the
 *            first), so each group is one strongly connected component
 *            (items otherwise only point back, so no two groups merge)
 *   roots    every object no item refers to goes into a module's
 *            "__objects__" list (round robin), so all of it lives on
 *
 * Mapping to the runtime, object for object what CPython makes: a set is
 * a dict whose values are None (the runtime has no set type); a code
 * entry is its bytecode (a bytes blob of the size) and rt_code_new()'s
 * code object, constants and local names tuples and kinds bytes (5); a
 * class is type(name, (), {}): its name, bases, dict, mro, __dict__ and
 * __weakref__ descriptors, the weak reference in object's subclass table
 * and its key (9); an instance keeps its attributes inline in a values
 * block, no dict object, while its class's shared keys hold its names
 * (CPython: 30 names, 29 for the first instance): one of more than
 * INLINE_MAX attributes (bucket 6 and up) has a dict of its own; a slots
 * instance is an instance of its bucket's __slots__ class, every slot
 * set.  An instance is no cycle member: a ring edge would need a name
 * its class's shared keys may no longer take.  The counts are exact
 * (wl__objects_count()); the PRNG picks sizes, targets and texts, never
 * how many objects a step makes.
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wl_app.h"

#define CODE_SCRATCH    (1u << 20)  /* random bytes code blobs copy from */
#define SIZE_MAX_ITEMS  (1u << 20)  /* WL_HIST_MAX buckets: 2^20 - 1 */
#define INLINE_MAX      29          /* attributes a first instance keeps
                                       inline (CPython's shared keys: 30
                                       names, one taken by its values
                                       block's shrink) */
#define DICT_BUCKET     6           /* instance sizes 32 and up: a dict */
#define SLOTS_NAMES_MAX 1024        /* names of one __slots__ class */

/* The section's state while it builds; plan entries are numbered in
 * build order and the arrays below hold plan numbers. */
typedef struct obuild {
    rt_heap_t *h;
    const wl_objects_spec_t *os;
    wl_app_t *app;
    uint64_t *rng;
    size_t *cap, *hotcap, *containers;
    size_t n;                   /* plan entries */
    uint8_t *kind;              /* per entry */
    uint8_t *refd;              /* per entry: an item refers to it */
    rt_obj_t **obj;             /* per entry, our reference; NULL: not yet */
    size_t *conts, nconts;      /* GC-able entries made so far */
    size_t *atoms, natoms;      /* atom entries made so far */
    size_t *fresh, nfresh;      /* atoms no item refers to yet (a stack) */
    size_t *strs, nstrs;        /* str entries made so far */
    size_t *ints, nints;        /* interned str entries made so far */
    size_t *classes, nclasses;
    size_t *codes, ncodes, code_next;
    size_t *isize;              /* per entry: an instance's attributes */
    size_t *icls;               /* per entry: an instance's class, 0 the
                                   base, i > 0 the class entry
                                   classes[i - 1] */
    rt_obj_t ***inames;         /* per class (as icls): its attribute
                                   names, set by its first instance */
    size_t *ninames;
    rt_obj_t *slots_cls[WL_HIST_MAX];   /* per size bucket, or NULL */
    rt_obj_t **mods;            /* module dicts (borrowed) */
    rt_obj_t **roots;           /* each module's "__objects__" (borrowed) */
    size_t nmods;
    rt_obj_t *base;             /* class for instances before any class */
    rt_obj_t *cycle_key;        /* interned "__cycle__" (borrowed) */
    uint8_t *scratch;
} obuild_t;

size_t
wl__scaled(long n, double scale)
{
    double x;

    if (n <= 0)
        return 0;
    x = (double)n * scale + 0.5;
    return x < 1.0 ? 1 : (size_t)x;
}

/* Runtime objects one entry of this kind makes (see the file comment). */
static size_t
per_kind(int k)
{
    return k == WL_OK_CLASS ? 9 : k == WL_OK_CODE ? 5 : 1;
}

/* total shared among hs's buckets by weight: share[k] = round(total *
 * w[k] / sum), the last bucket of non-zero weight taking what is left
 * (all of it to bucket 0 when every weight is 0). */
static void
hist_shares(const wl_hist_t *hs, size_t total, size_t share[WL_HIST_MAX])
{
    double sum = 0;
    size_t k, last = 0, given = 0;

    for (k = 0; k < WL_HIST_MAX; k++)
        share[k] = 0;
    for (k = 0; k < hs->n; k++) {
        sum += hs->w[k];
        if (hs->w[k] > 0)
            last = k;
    }
    for (k = 0; sum > 0 && k < last; k++) {
        share[k] = (size_t)((double)total * hs->w[k] / sum + 0.5);
        if (share[k] > total - given)
            share[k] = total - given;
        given += share[k];
    }
    share[last] = total - given;
}

/* Whether the __slots__ class of size bucket k is made, and its names. */
static int
slots_bucket_used(const wl_hist_t *hs, size_t k)
{
    double sum = 0;

    for (size_t j = 0; j < hs->n; j++)
        sum += hs->w[j];
    return sum > 0 ? k < hs->n && hs->w[k] > 0 : k == 0;
}

static size_t
slots_bucket_names(size_t k)
{
    size_t n = k == 0 ? 0 : (3 * ((size_t)1 << (k - 1)) - 1) / 2;

    return n < SLOTS_NAMES_MAX ? n : SLOTS_NAMES_MAX;
}

/* The modules (module, globals, name, "__objects__" list: 4 each), the
 * base class (9), the interned "__objects__" and "__cycle__" keys (2),
 * each entry's objects, the instances with a dict, the __slots__ classes
 * (names tuple, name, bases, dict, class, mro, weakref, key and a
 * descriptor per name: 8 + n) and their names (the largest n), and "x"
 * (a code object's local name) unless the heap's code made it. */
size_t
wl__objects_count(const wl_objects_spec_t *os, double scale, int heap_code)
{
    size_t total, share[WL_HIST_MAX], names = 0, k;

    if (!os->present)
        return 0;
    total = 4 * wl__scaled(os->modules, scale) + 9 + 2;
    for (k = 0; k < WL_OK_COUNT; k++)
        total += wl__scaled(os->count[k], scale) * per_kind((int)k);
    hist_shares(&os->size[WL_OK_INSTANCE],
                wl__scaled(os->count[WL_OK_INSTANCE], scale), share);
    for (k = DICT_BUCKET; k < WL_HIST_MAX; k++)
        total += share[k];
    if (wl__scaled(os->count[WL_OK_SLOTS], scale) > 0)
        for (k = 0; k < WL_HIST_MAX; k++)
            if (slots_bucket_used(&os->size[WL_OK_SLOTS], k)) {
                size_t n = slots_bucket_names(k);

                total += 8 + n;
                names = n > names ? n : names;
            }
    if (!heap_code && wl__scaled(os->count[WL_OK_CODE], scale) > 0)
        total += 1;
    return total + names;
}

/* ---- randomness -------------------------------------------------------- */

static size_t
pick(obuild_t *b, size_t n)
{
    return n ? (size_t)(wl__rand(b->rng) % n) : 0;
}

static size_t
hist_bucket(obuild_t *b, const wl_hist_t *hs)
{
    double sum = 0, x;
    size_t k;

    for (k = 0; k < hs->n; k++)
        sum += hs->w[k];
    x = wl__unit(b->rng) * sum;
    for (k = 0; k + 1 < hs->n; k++) {
        if (x < hs->w[k])
            return k;
        x -= hs->w[k];
    }
    while (k > 0 && hs->w[k] == 0)      /* rounding at the top end */
        k--;
    return k;
}

/* A value: bucket 0 is 0, bucket k is 2^(k-1) .. 2^k - 1. */
static size_t
hist_value(obuild_t *b, const wl_hist_t *hs)
{
    size_t k = hist_bucket(b, hs), lo;

    if (k == 0)
        return 0;
    lo = (size_t)1 << (k - 1);
    return lo + pick(b, lo);
}

/* A distance: bucket k is 2^k .. 2^(k+1) - 1. */
static size_t
hist_distance(obuild_t *b, const wl_hist_t *hs)
{
    size_t lo = (size_t)1 << hist_bucket(b, hs);

    return lo + pick(b, lo);
}

/* ---- recording --------------------------------------------------------- */

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

/* Record o in the app's index (NULL passes through). */
static rt_obj_t *
keep(obuild_t *b, rt_obj_t *o)
{
    wl_app_t *app = b->app;

    if (o == NULL || grow(&app->index, b->cap, app->n) < 0)
        return NULL;
    app->index[app->n++] = o;
    if (rt_is_gc(o))
        (*b->containers)++;
    return o;
}

static int
hot(obuild_t *b, rt_obj_t *o)
{
    wl_app_t *app = b->app;

    if (grow(&app->hot, b->hotcap, app->nhot) < 0)
        return -ENOMEM;
    app->hot[app->nhot++] = o;
    return 0;
}

static int
is_container(int k)
{
    return k != WL_OK_STR && k != WL_OK_INT && k != WL_OK_FLOAT
           && k != WL_OK_CODE;
}

/* ---- items ------------------------------------------------------------- */

/* The entry an item refers to (marked referenced), or SIZE_MAX for None
 * (nothing made yet to refer to). */
static size_t
target(obuild_t *b)
{
    const wl_objects_spec_t *os = b->os;
    size_t t;

    if (b->nconts > 0 && wl__unit(b->rng) < os->ref_container) {
        size_t d = hist_distance(b, &os->ref_distance);

        t = b->conts[d > b->nconts ? 0 : b->nconts - d];
    } else {
        t = SIZE_MAX;
        if (wl__unit(b->rng) >= os->ref_shared)
            while (b->nfresh > 0 && t == SIZE_MAX) {
                t = b->fresh[--b->nfresh];
                if (b->refd[t])
                    t = SIZE_MAX;       /* taken as shared since */
            }
        if (t == SIZE_MAX && b->natoms > 0)
            t = b->atoms[pick(b, b->natoms)];
    }
    if (t != SIZE_MAX)
        b->refd[t] = 1;
    return t;
}

/* A new reference to an item's object. */
static rt_obj_t *
item(obuild_t *b)
{
    size_t t = target(b);
    rt_obj_t *o = t == SIZE_MAX ? rt_none(b->h) : b->obj[t];

    rt_incref(o);
    return o;
}

/* Up to *n distinct keys (strs made earlier; interned ones when there are
 * enough); *n is lowered to the strs there are.  Borrowed, in keys[]. */
static void
keys(obuild_t *b, rt_obj_t **out, size_t *n)
{
    const size_t *pool = b->ints;
    size_t np = b->nints, base, j;

    if (np < *n) {
        pool = b->strs;
        np = b->nstrs;
    }
    if (*n > np)
        *n = np;
    base = pick(b, np);
    for (j = 0; j < *n; j++) {
        size_t t = pool[(base + j) % np];

        b->refd[t] = 1;
        out[j] = b->obj[t];
    }
}

/* d[k] = item for n keys (values None with none_values: a set). */
static int
fill_dict(obuild_t *b, rt_obj_t *d, size_t n, int none_values)
{
    rt_obj_t **ks;
    size_t j;
    int rc = 0;

    if (n == 0)
        return 0;
    if ((ks = malloc(n * sizeof *ks)) == NULL)
        return -ENOMEM;
    keys(b, ks, &n);
    for (j = 0; j < n && rc == 0; j++) {
        rt_obj_t *v = none_values ? rt_none(b->h) : item(b);

        if (none_values)
            rt_incref(v);
        rc = rt_dict_set(d, ks[j], v) < 0 ? -ENOMEM : 0;
        rt_decref(v);
    }
    free(ks);
    return rc;
}

/* ---- one entry --------------------------------------------------------- */

/* A text unique in the heap: "~<entry in hex>." then random letters, len
 * bytes in all (more if the prefix is longer). */
static rt_obj_t *
text(obuild_t *b, size_t e, size_t len, int interned)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz_";
    char small[256], *buf = small;
    size_t n;
    rt_obj_t *s;

    if (len + 32 > sizeof small && (buf = malloc(len + 32)) == NULL)
        return NULL;
    n = (size_t)snprintf(buf, 32, "~%zx.", e);
    for (; n < len; n++)
        buf[n] = alphabet[pick(b, sizeof alphabet - 1)];
    s = interned ? rt_str_intern(b->h, buf, n) : rt_str_new(b->h, buf, n);
    if (buf != small)
        free(buf);
    return s;
}

/* The class icls[e] names (see obuild_t). */
static rt_obj_t *
class_of(obuild_t *b, size_t e)
{
    size_t c = b->icls[e];

    return c == 0 ? b->base : b->obj[b->classes[c - 1]];
}

/* An instance's attributes, inline: its class's names (the first
 * instance picks them), one item each; more than INLINE_MAX, a dict. */
static int
fill_instance(obuild_t *b, size_t e, rt_obj_t *o)
{
    size_t c = b->icls[e], n = b->isize[e], j;
    int rc = 0;

    if (b->inames[c] == NULL) {
        if ((b->inames[c] = malloc((n + 1) * sizeof **b->inames)) == NULL)
            return -ENOMEM;
        b->ninames[c] = n;
        keys(b, b->inames[c], &b->ninames[c]);
    }
    if (n > b->ninames[c])
        n = b->ninames[c];
    for (j = 0; j < n && rc == 0; j++) {
        rt_obj_t *v = item(b);

        rc = rt_instance_setattr(o, b->inames[c][j], v) < 0 ? -ENOMEM : 0;
        rt_decref(v);
    }
    if (rc == 0 && b->isize[e] > INLINE_MAX && rt_instance_dict(o) == NULL)
        rc = -ENOMEM;                   /* made by now unless names ran
                                           short */
    return rc;
}

/* Make entry e (its kind from the plan): its object in b->obj[e], our
 * reference; recorded in the index and the per-kind arrays. */
static int
make(obuild_t *b, size_t e)
{
    rt_heap_t *h = b->h;
    const wl_objects_spec_t *os = b->os;
    int k = b->kind[e];
    size_t n = wl__obj_kind_sized(k) && k != WL_OK_INSTANCE
               && k != WL_OK_SLOTS ? hist_value(b, &os->size[k]) : 0, j;
    rt_obj_t *o = NULL;
    char name[48];

    if (n >= SIZE_MAX_ITEMS)
        n = SIZE_MAX_ITEMS - 1;
    switch (k) {
    case WL_OK_STR: {
        int in = wl__unit(b->rng) < os->interned;

        if ((o = keep(b, text(b, e, n, in))) == NULL)
            return -ENOMEM;
        b->strs[b->nstrs++] = e;
        if (in) {
            b->ints[b->nints++] = e;
            if (hot(b, o) < 0)
                return -ENOMEM;
        }
        break;
    }
    case WL_OK_CODE: {
        size_t off = pick(b, CODE_SCRATCH - n + 1);
        rt_obj_t *blob, *cname = NULL;

        j = 1;
        keys(b, &cname, &j);            /* a name made earlier, if any */
        if (j == 0)
            cname = rt_class_name(b->base);
        if ((blob = keep(b, rt_bytes_new(h, b->scratch + off, n))) == NULL)
            return -ENOMEM;
        o = keep(b, rt_code_new(h, cname, blob));
        rt_decref(blob);                /* its constants tuple holds it */
        if (o == NULL)
            return -ENOMEM;
        b->codes[b->ncodes++] = e;
        break;
    }
    case WL_OK_INT:
        o = keep(b, rt_int_new(h, 1000 + (int64_t)pick(b, 1000000000)));
        break;
    case WL_OK_FLOAT:
        o = keep(b, rt_float_new(h, wl__unit(b->rng) * 1e6));
        break;
    case WL_OK_LIST:
        if ((o = keep(b, rt_list_new(h))) == NULL)
            return -ENOMEM;
        b->obj[e] = o;
        for (j = 0; j < n; j++)
            if (rt_list_append_steal(o, item(b)) < 0)
                return -ENOMEM;
        break;
    case WL_OK_TUPLE:
        if ((o = keep(b, rt_tuple_new(h, n))) == NULL)
            return -ENOMEM;
        for (j = 0; j < n; j++)
            rt_tuple_set_steal(o, j, item(b));
        break;
    case WL_OK_DICT:
    case WL_OK_SET:
        if ((o = keep(b, rt_dict_new(h))) == NULL)
            return -ENOMEM;
        b->obj[e] = o;
        if (fill_dict(b, o, n, k == WL_OK_SET) < 0)
            return -ENOMEM;
        break;
    case WL_OK_INSTANCE:
        if ((o = keep(b, rt_instance_new(h, class_of(b, e)))) == NULL)
            return -ENOMEM;
        b->obj[e] = o;
        if (fill_instance(b, e, o) < 0)
            return -ENOMEM;
        break;
    case WL_OK_SLOTS: {
        rt_obj_t *cls = b->slots_cls[hist_bucket(b, &os->size[k])];

        if ((o = keep(b, rt_slots_new(h, cls))) == NULL)
            return -ENOMEM;
        b->obj[e] = o;
        n = rt_slots_len(o);
        for (j = 0; j < n; j++) {
            rt_obj_t *v = item(b);
            int rc = rt_slots_set(o, j, v);

            rt_decref(v);
            if (rc < 0)
                return -ENOMEM;
        }
        break;
    }
    case WL_OK_FUNCTION: {
        size_t c = b->code_next < b->ncodes ? b->codes[b->code_next++]
                   : b->codes[pick(b, b->ncodes)];
        rt_obj_t *fname = rt_class_name(b->base);

        j = 1;
        keys(b, &fname, &j);            /* a name made earlier, if any */
        if (j == 0)
            fname = rt_class_name(b->base);
        b->refd[c] = 1;
        o = keep(b, rt_function_new(h, fname, b->obj[c],
                                    b->mods[pick(b, b->nmods)]));
        break;
    }
    case WL_OK_CLASS:
        snprintf(name, sizeof name, "~C%zx", e);
        if ((o = keep(b, rt_class_new(h, name, NULL))) == NULL)
            return -ENOMEM;
        b->obj[e] = o;
        if (keep(b, rt_class_dict(o)) == NULL
            || keep(b, rt_class_name(o)) == NULL || hot(b, o) < 0
            || fill_dict(b, rt_class_dict(o), n, 0) < 0)
            return -ENOMEM;
        b->classes[b->nclasses++] = e;
        break;
    }
    if (o == NULL)
        return -ENOMEM;
    b->obj[e] = o;
    if (is_container(k)) {
        b->conts[b->nconts++] = e;
    } else {
        b->atoms[b->natoms++] = e;
        b->fresh[b->nfresh++] = e;
    }
    return 0;
}

/* ---- the steps ---------------------------------------------------------- */

static int
build_modules(obuild_t *b, size_t m)
{
    rt_obj_t *key = keep(b, rt_str_intern(b->h, "__objects__", 11));
    char name[64];

    if (key == NULL)
        return -ENOMEM;
    rt_decref(key);                     /* the interned dict holds it */
    if ((b->mods = calloc(m, sizeof *b->mods)) == NULL
        || (b->roots = calloc(m, sizeof *b->roots)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m; i++) {
        rt_obj_t *mod, *d, *l;

        snprintf(name, sizeof name, "objects.mod_%zu", i);
        if ((mod = rt_module_new(b->h, name)) == NULL)
            return -ENOMEM;
        rt_decref(mod);                 /* sys.modules holds it */
        d = rt_module_dict(mod);
        if (keep(b, mod) == NULL || keep(b, d) == NULL
            || keep(b, rt_dict_get(d, b->app->names[WL_N_DUNDER_NAME]))
               == NULL
            || hot(b, mod) < 0 || hot(b, d) < 0)
            return -ENOMEM;
        if ((l = keep(b, rt_list_new(b->h))) == NULL)
            return -ENOMEM;
        if (rt_dict_set(d, key, l) < 0) {
            rt_decref(l);
            return -ENOMEM;
        }
        rt_decref(l);
        b->mods[i] = d;
        b->roots[i] = l;
        b->nmods = i + 1;
    }
    return 0;
}

/* The plan: every kind's count, shuffled; the first code object before
 * the first function. */
static void
plan(obuild_t *b, double scale)
{
    size_t i = 0, j, fn = SIZE_MAX, cd = SIZE_MAX;

    for (int k = 0; k < WL_OK_COUNT; k++)
        for (j = wl__scaled(b->os->count[k], scale); j > 0; j--)
            b->kind[i++] = (uint8_t)k;
    for (i = b->n; i > 1; i--) {        /* Fisher-Yates */
        uint8_t t;

        j = pick(b, i);
        t = b->kind[i - 1];
        b->kind[i - 1] = b->kind[j];
        b->kind[j] = t;
    }
    for (i = 0; i < b->n; i++) {
        if (b->kind[i] == WL_OK_FUNCTION && fn == SIZE_MAX)
            fn = i;
        if (b->kind[i] == WL_OK_CODE && cd == SIZE_MAX)
            cd = i;
    }
    if (fn != SIZE_MAX && cd != SIZE_MAX && cd > fn) {
        b->kind[fn] = WL_OK_CODE;
        b->kind[cd] = WL_OK_FUNCTION;
    }
}

/* Each instance's size and class (see the file comment); *first is the
 * per-class scratch (nclasses + 1 entries, SIZE_MAX). */
static void
plan_instances(obuild_t *b, double scale, size_t *first)
{
    const wl_hist_t *hs = &b->os->size[WL_OK_INSTANCE];
    size_t ni = wl__scaled(b->os->count[WL_OK_INSTANCE], scale);
    size_t share[WL_HIST_MAX], *v = b->isize + b->n - ni, i = 0, j, k;
    size_t seen = 0;

    /* The sizes, drawn into the tail of isize (free until the loop
     * below, which writes entries in order and reads ahead of them). */
    hist_shares(hs, ni, share);
    for (k = 0; k < WL_HIST_MAX; k++)
        for (j = 0; j < share[k]; j++) {
            size_t lo = k ? (size_t)1 << (k - 1) : 0, span = lo;

            if (k < DICT_BUCKET && lo + span - 1 > INLINE_MAX)
                span = INLINE_MAX - lo + 1;
            v[i++] = k == 0 ? 0 : lo + pick(b, span);
        }
    for (i = ni; i > 1; i--) {          /* Fisher-Yates */
        size_t t;

        j = pick(b, i);
        t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    for (i = 0, j = 0; i < b->n; i++) {
        if (b->kind[i] == WL_OK_CLASS) {
            seen++;
            continue;
        }
        if (b->kind[i] != WL_OK_INSTANCE)
            continue;
        b->isize[i] = v[j++];           /* v[j] is at i or after it */
        k = seen ? 1 + pick(b, seen) : 0;
        b->icls[i] = k;
        if (first[k] == SIZE_MAX) {
            first[k] = i;
        } else if (b->isize[i] > b->isize[first[k]]) {
            size_t t = b->isize[i];

            b->isize[i] = b->isize[first[k]];
            b->isize[first[k]] = t;
        }
    }
}

/* The __slots__ classes, one per size bucket used (with slots). */
static int
build_slots_classes(obuild_t *b, double scale)
{
    const wl_hist_t *hs = &b->os->size[WL_OK_SLOTS];
    size_t k, i, most = 0;
    rt_obj_t **names;
    char name[48];
    int rc = 0;

    if (wl__scaled(b->os->count[WL_OK_SLOTS], scale) == 0)
        return 0;
    for (k = 0; k < WL_HIST_MAX; k++)
        if (slots_bucket_used(hs, k) && slots_bucket_names(k) > most)
            most = slots_bucket_names(k);
    if ((names = calloc(most + 1, sizeof *names)) == NULL)
        return -ENOMEM;
    for (i = 0; i < most && rc == 0; i++) {
        int len = snprintf(name, sizeof name, "~s%zu", i);

        if ((names[i] = keep(b, rt_str_intern(b->h, name, (size_t)len)))
            == NULL)
            rc = -ENOMEM;
    }
    for (k = 0; k < WL_HIST_MAX && rc == 0; k++) {
        size_t n = slots_bucket_names(k);
        rt_obj_t *t, *c;

        if (!slots_bucket_used(hs, k))
            continue;
        if ((t = rt_tuple_new(b->h, n)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (i = 0; i < n; i++) {
            rt_incref(names[i]);
            rt_tuple_set_steal(t, i, names[i]);
        }
        snprintf(name, sizeof name, "~S%zu", k);
        c = rt_class_new_slots(b->h, name, NULL, t);
        rt_decref(t);                   /* the class holds it */
        if (keep(b, c) == NULL || keep(b, rt_class_dict(c)) == NULL
            || keep(b, rt_class_name(c)) == NULL || hot(b, c) < 0
            || rt_dict_set(b->mods[0], rt_class_name(c), c) < 0)
            rc = -ENOMEM;
        b->slots_cls[k] = c;            /* ours, dropped at the end */
    }
    for (i = 0; i < most; i++)
        rt_xdecref(names[i]);           /* the interned dict holds them */
    free(names);
    return rc;
}

/* Add one item to a list, dict, instance or class: a reference to dst. */
static int
ring_edge(obuild_t *b, size_t src, size_t dst)
{
    rt_obj_t *o = b->obj[src], *to = b->obj[dst];

    switch (b->kind[src]) {
    case WL_OK_LIST:
        return rt_list_append(o, to);
    case WL_OK_CLASS:
        return rt_dict_set(rt_class_dict(o), b->cycle_key, to);
    default:
        return rt_dict_set(o, b->cycle_key, to);
    }
}

static int
cycle_member(int k)
{
    return k == WL_OK_LIST || k == WL_OK_DICT || k == WL_OK_CLASS;
}

static int
build_cycles(obuild_t *b)
{
    const wl_hist_t *cs = &b->os->cycle_size;
    size_t nmut = 0, want, left, i, *sel, nsel = 0, k;
    double sum = 0;
    int rc = 0;

    for (i = 0; i < b->n; i++)
        nmut += cycle_member(b->kind[i]);
    want = (size_t)(b->os->cycle_fraction * (double)nmut + 0.5);
    if (want == 0)
        return 0;
    if ((sel = malloc(want * sizeof *sel)) == NULL)
        return -ENOMEM;
    /* Selection sampling (Knuth's algorithm S): exactly `want` of the
     * nmut, each equally likely, kept in plan order. */
    left = nmut;
    for (i = 0; i < b->n && nsel < want; i++) {
        if (!cycle_member(b->kind[i]))
            continue;
        if ((double)(want - nsel) > wl__unit(b->rng) * (double)left)
            sel[nsel++] = i;
        left--;
    }
    /* The members go to the size buckets in proportion to the weights
     * (the last bucket takes the rounding), then each bucket's share is
     * cut into groups of sizes drawn within the bucket (its last group
     * takes what is left).  After this loop, i members are in rings. */
    for (k = 0; k < cs->n; k++)
        sum += cs->w[k];
    i = 0;
    for (k = 1; k < cs->n && rc == 0; k++) {
        size_t share = k + 1 == cs->n ? nsel - i
                       : (size_t)((double)nsel * cs->w[k] / sum + 0.5);
        size_t lo = (size_t)1 << (k - 1), end;

        if (share > nsel - i)
            share = nsel - i;
        end = i + share;
        while (i < end && rc == 0) {
            size_t s = lo + pick(b, lo), j;

            if (s > end - i)
                s = end - i;
            for (j = 0; j < s && rc == 0; j++)
                rc = ring_edge(b, sel[i + j], sel[i + (j + 1) % s]) < 0
                     ? -ENOMEM : 0;
            i += s;
        }
    }
    free(sel);
    return rc;
}

/* Every entry no item refers to, into a module's "__objects__". */
static int
build_roots(obuild_t *b)
{
    size_t r = 0;

    for (size_t i = 0; i < b->n; i++)
        if (!b->refd[i]
            && rt_list_append(b->roots[r++ % b->nmods], b->obj[i]) < 0)
            return -ENOMEM;
    return 0;
}

int
wl__objects_build(wl_app_t *app, const wl_objects_spec_t *os, double scale,
                  uint64_t *rng, size_t *cap, size_t *hotcap,
                  size_t *containers)
{
    obuild_t b;
    size_t i;
    int rc = -ENOMEM;

    if (!os->present)
        return 0;
    memset(&b, 0, sizeof b);
    b.h = app->h;
    b.os = os;
    b.app = app;
    b.rng = rng;
    b.cap = cap;
    b.hotcap = hotcap;
    b.containers = containers;
    for (int k = 0; k < WL_OK_COUNT; k++)
        b.n += wl__scaled(os->count[k], scale);
    if ((b.kind = malloc(b.n + 1)) == NULL
        || (b.refd = calloc(b.n + 1, 1)) == NULL
        || (b.obj = calloc(b.n + 1, sizeof *b.obj)) == NULL
        || (b.conts = malloc((b.n + 1) * sizeof *b.conts)) == NULL
        || (b.atoms = malloc((b.n + 1) * sizeof *b.atoms)) == NULL
        || (b.fresh = malloc((b.n + 1) * sizeof *b.fresh)) == NULL
        || (b.strs = malloc((b.n + 1) * sizeof *b.strs)) == NULL
        || (b.ints = malloc((b.n + 1) * sizeof *b.ints)) == NULL
        || (b.classes = malloc((b.n + 1) * sizeof *b.classes)) == NULL
        || (b.codes = malloc((b.n + 1) * sizeof *b.codes)) == NULL
        || (b.isize = calloc(b.n + 1, sizeof *b.isize)) == NULL
        || (b.icls = calloc(b.n + 1, sizeof *b.icls)) == NULL
        || (b.inames = calloc(b.n + 2, sizeof *b.inames)) == NULL
        || (b.ninames = malloc((b.n + 2) * sizeof *b.ninames)) == NULL
        || (b.scratch = malloc(CODE_SCRATCH)) == NULL)
        goto out;
    for (i = 0; i < CODE_SCRATCH; i += 8) {
        uint64_t r = wl__rand(rng);

        memcpy(b.scratch + i, &r, 8);
    }
    if ((rc = build_modules(&b, wl__scaled(os->modules, scale))) < 0)
        goto out;
    rc = -ENOMEM;
    if ((b.base = keep(&b, rt_class_new(b.h, "~Base", NULL))) == NULL)
        goto out;
    if (keep(&b, rt_class_dict(b.base)) == NULL
        || keep(&b, rt_class_name(b.base)) == NULL
        || rt_dict_set(b.mods[0], rt_class_name(b.base), b.base) < 0)
        goto out;
    b.cycle_key = keep(&b, rt_str_intern(b.h, "__cycle__", 9));
    if (b.cycle_key == NULL)
        goto out;
    rt_decref(b.cycle_key);             /* the interned dict holds it */
    if ((rc = build_slots_classes(&b, scale)) < 0)
        goto out;
    rc = -ENOMEM;
    plan(&b, scale);
    for (i = 0; i < b.n + 2; i++)
        b.ninames[i] = SIZE_MAX;        /* scratch: first instances */
    plan_instances(&b, scale, b.ninames);
    for (i = 0; i < b.n; i++)
        if ((rc = make(&b, i)) < 0)
            goto out;
    if ((rc = build_cycles(&b)) == 0)
        rc = build_roots(&b);

out:
    /* Drop the builder's references: what the roots and items hold
     * stays (on failure, the rest goes). */
    for (i = 0; b.obj != NULL && i < b.n; i++)
        rt_xdecref(b.obj[i]);
    rt_xdecref(b.base);
    for (i = 0; i < WL_HIST_MAX; i++)
        rt_xdecref(b.slots_cls[i]);
    for (i = 0; b.inames != NULL && i < b.n + 2; i++)
        free(b.inames[i]);
    free(b.isize);
    free(b.icls);
    free(b.inames);
    free(b.ninames);
    free(b.kind);
    free(b.refd);
    free(b.obj);
    free(b.conts);
    free(b.atoms);
    free(b.fresh);
    free(b.strs);
    free(b.ints);
    free(b.classes);
    free(b.codes);
    free(b.mods);
    free(b.roots);
    free(b.scratch);
    return rc;
}
