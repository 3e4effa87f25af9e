/*
 * workload.c -- the workload format: load a JSON workload with jansson,
 * check every key against the tables below (type, range, default), and
 * turn the result back into JSON for meta.json (API: workload.h).
 *
 * Every key of "heap" and of a route is one row of heap_fields[] or
 * route_fields[]: its name, its field in the struct, its range and its
 * default.  Parsing, the messages, the query overrides and
 * wl_spec_to_json() are all driven by those rows, so a new knob is one row
 * (plus its struct field in wl_spec.h and its use in webapp.c).
 *
 * Messages name the place: malformed JSON gets jansson's line and column;
 * a bad value gets "FILE:LINE:COL: field 'routes[2].reads': expected ...,
 * got ..." with the position from jsonpos.c; an unknown key points at the
 * key and suggests the nearest known one, since a typo must not pass
 * silently as "use the default".
 */
#include "workload.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonpos.h"
#include "webapp_default.h"
#include "wl_spec.h"

#define MAX_FILE_BYTES  (16u << 20)     /* larger workload files: -EFBIG */
#define COUNT_MAX       100000000LL     /* any count, before scaling */
#define MAX_ROUTES      1024
#define MAX_PATH_LEN    256
#define MAX_NAME_LEN    64
#define MAX_NODES       1000000LL       /* objects in one template tree */

/* ---- the tables ------------------------------------------------------- */

typedef enum { F_INT, F_NUM } ftype_t;

typedef struct field {
    const char *key;
    ftype_t type;
    size_t off;                 /* of the long or double in the struct */
    long long imin, imax;       /* F_INT, inclusive */
    double dmin, dmax;          /* F_NUM, inclusive */
    double def;                 /* default when the key is absent */
} field_t;

#define HOFF(f) offsetof(wl_heap_spec_t, f)
#define ROFF(f) offsetof(wl_route_spec_t, f)
#define INT(k, o, lo, hi, d) { k, F_INT, o, lo, hi, 0, 0, d }
#define NUM(k, o, lo, hi, d) { k, F_NUM, o, 0, 0, lo, hi, d }

/* Defaults are the embedded webapp's values (a test checks they agree). */
static const field_t heap_fields[] = {
    INT("interned_strings", HOFF(interned_strings), 1, COUNT_MAX, 50000),
    INT("modules", HOFF(modules), 0, COUNT_MAX, 1500),
    INT("classes_per_module", HOFF(classes_per_module), 0, 10000, 8),
    INT("methods_per_class", HOFF(methods_per_class), 0, 10000, 8),
    INT("functions_per_module", HOFF(functions_per_module), 0, 10000, 16),
    INT("constants_per_module", HOFF(constants_per_module), 0, 10000, 24),
    INT("code_bytes", HOFF(code_bytes), 0, 1 << 20, 160),
    INT("config_dicts", HOFF(config_dicts), 0, COUNT_MAX, 400),
    INT("config_keys", HOFF(config_keys), 0, 100000, 24),
    INT("url_patterns", HOFF(url_patterns), 0, COUNT_MAX, 2000),
    INT("templates", HOFF(templates), 0, COUNT_MAX, 1000),
    INT("template_depth", HOFF(template_depth), 0, 20, 4),
    INT("template_fanout", HOFF(template_fanout), 1, 1000, 3),
    INT("models", HOFF(models), 0, COUNT_MAX, 300),
    INT("fields_per_model", HOFF(fields_per_model), 0, 10000, 12),
    INT("instances", HOFF(instances), 0, COUNT_MAX, 75000),
    INT("instance_attrs", HOFF(instance_attrs), 0, 10000, 6),
    INT("slots_percent", HOFF(slots_percent), 0, 100, 50),
};

static const field_t route_fields[] = {
    INT("reads", ROFF(reads), 0, COUNT_MAX, 0),
    NUM("spread", ROFF(spread), 0, 1, 1),
    NUM("offset", ROFF(offset), 0, 1, 0),
    NUM("hot", ROFF(hot), 0, 1, 0),
    INT("walk_depth", ROFF(walk_depth), 0, 2, 1),
    INT("walk_width", ROFF(walk_width), 0, 10000, 8),
    INT("temporaries", ROFF(temporaries), 0, COUNT_MAX, 0),
    INT("cyclic_garbage", ROFF(cyclic_garbage), 0, COUNT_MAX, 0),
    INT("retain", ROFF(retain), 0, COUNT_MAX, 0),
    INT("retain_max", ROFF(retain_max), 0, COUNT_MAX, 10000),
    INT("response_items", ROFF(response_items), 0, 1000000, 10),
};

#define N_HEAP  (sizeof heap_fields / sizeof heap_fields[0])
#define N_ROUTE (sizeof route_fields / sizeof route_fields[0])

/* Keys that are not numbers, for "did you mean". */
static const char *const top_keys[] = { "name", "description", "heap",
                                        "routes" };
static const char *const route_str_keys[] = { "path" };

#define FLONG(base, f)   ((long *)(void *)((char *)(base) + (f)->off))
#define FDOUBLE(base, f) ((double *)(void *)((char *)(base) + (f)->off))
#define CFLONG(base, f) \
    ((const long *)(const void *)((const char *)(base) + (f)->off))
#define CFDOUBLE(base, f) \
    ((const double *)(const void *)((const char *)(base) + (f)->off))

static void
set_default(void *base, const field_t *f)
{
    if (f->type == F_INT)
        *FLONG(base, f) = (long)f->def;
    else
        *FDOUBLE(base, f) = f->def;
}

long
wl__names_needed(const wl_heap_spec_t *h)
{
    /* The dicts whose keys come from the pool: a module's globals
     * (functions and constants), a class dict (methods), a config dict,
     * a model class dict (fields) and an instance dict (attributes, named
     * after the model's fields). */
    long n = h->functions_per_module + h->constants_per_module;

    if (h->methods_per_class > n)
        n = h->methods_per_class;
    if (h->config_keys > n)
        n = h->config_keys;
    if (h->fields_per_model > n)
        n = h->fields_per_model;
    if (h->instance_attrs > n)
        n = h->instance_attrs;
    return n;
}

/* ---- messages --------------------------------------------------------- */

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "an integer from 0 to 100", "a number from 0 to 1". */
static void
expected(const field_t *f, char *buf, size_t len)
{
    if (f->type == F_INT)
        snprintf(buf, len, "an integer from %lld to %lld", f->imin, f->imax);
    else
        snprintf(buf, len, "a number from %g to %g", f->dmin, f->dmax);
}

/* What a JSON value is, for "got ...": "ten" quoted, numbers as written. */
static void
describe(const json_t *v, char *buf, size_t len)
{
    const char *s;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(buf, len, "an object");
        break;
    case JSON_ARRAY:
        snprintf(buf, len, "an array");
        break;
    case JSON_STRING:
        /* at most 40 bytes of it, on one printable line; room for ..." */
        s = json_string_value(v);
        if (len > 6) {
            buf[0] = '"';
            strcat(buf, jpos_printable(buf + 1, len - 5, s, 40)
                        ? "...\"" : "\"");
        }
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%.17g", json_real_value(v));
        if (strcspn(buf, ".eni") == strlen(buf))
            strncat(buf, ".0", len - strlen(buf) - 1);
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    case JSON_NULL:
        snprintf(buf, len, "null");
        break;
    }
}

/* Levenshtein distance; words over 63 bytes count as far. */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[64];

    if (la > 63 || lb > 63)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Track the nearest candidate to word (a typo: within 2 edits, or a third
 * of the word's length). */
typedef struct near {
    const char *word, *best;
    size_t bestd;
} near_t;

static void
near_try(near_t *n, const char *cand)
{
    size_t d = distance(n->word, cand);

    if (d < n->bestd) {
        n->bestd = d;
        n->best = cand;
    }
}

static const char *
near_result(const near_t *n)
{
    size_t limit = strlen(n->word) / 3;

    if (limit < 2)
        limit = 2;
    return n->bestd <= limit ? n->best : NULL;
}

/* ---- parsing ---------------------------------------------------------- */

/* Where the text came from, for messages. */
typedef struct src {
    const char *file;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
} src_t;

static int
bad_value(const src_t *src, const char *ptr, const char *want,
          const json_t *v)
{
    char got[80];

    describe(v, got, sizeof got);
    return jpos_errorf(src->err, src->errlen, src->file, src->text,
                       src->len, ptr, "expected %s, got %s", want, got);
}

static int
unknown_key(const src_t *src, const char *ptr, const char *key,
            const field_t *fields, size_t nfields,
            const char *const *extra, size_t nextra)
{
    near_t n = { key, NULL, SIZE_MAX };
    const char *best;
    size_t i;

    for (i = 0; i < nfields; i++)
        near_try(&n, fields[i].key);
    for (i = 0; i < nextra; i++)
        near_try(&n, extra[i]);
    if ((best = near_result(&n)) != NULL)
        return jpos_key_errorf(src->err, src->errlen, src->file, src->text,
                               src->len, ptr,
                               "unknown key, did you mean '%s'?", best);
    return jpos_key_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, ptr, "unknown key (workloads/"
                           "webapp.json lists every key)");
}

/* Check v against row f; store it into base. */
static int
apply_field(void *base, const field_t *f, const json_t *v, const src_t *src,
            const char *ptr)
{
    char want[96];

    expected(f, want, sizeof want);
    if (f->type == F_INT) {
        json_int_t iv;

        if (!json_is_integer(v))
            return bad_value(src, ptr, want, v);
        iv = json_integer_value(v);
        if (iv < f->imin || iv > f->imax)
            return bad_value(src, ptr, want, v);
        *FLONG(base, f) = (long)iv;
    } else {
        double dv;

        if (!json_is_number(v))
            return bad_value(src, ptr, want, v);
        dv = json_number_value(v);
        if (!(dv >= f->dmin && dv <= f->dmax))
            return bad_value(src, ptr, want, v);
        *FDOUBLE(base, f) = dv;
    }
    return 0;
}

static const field_t *
field_by_key(const field_t *fields, size_t n, const char *key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* ptr + "/" + key, for the messages about one member. */
static void
child_key(char *out, size_t size, const char *ptr, const char *key)
{
    snprintf(out, size, "%s", ptr);
    if (jpos_path_append_key(out, size, key) < 0)
        snprintf(out, size, "%s", ptr);   /* too deep: point at parent */
}

static void
child_index(char *out, size_t size, const char *ptr, size_t i)
{
    snprintf(out, size, "%s", ptr);
    if (jpos_path_append_index(out, size, i) < 0)
        snprintf(out, size, "%s", ptr);
}

static int
parse_heap(wl_heap_spec_t *h, const json_t *obj, const src_t *src)
{
    const char *key;
    json_t *v;
    char ptr[512], want[160];
    long need;
    long long nodes = 1, level = 1;
    int rc;

    if (!json_is_object(obj))
        return bad_value(src, "/heap", "an object of heap sizes", obj);
    json_object_foreach((json_t *)obj, key, v) {
        const field_t *f = field_by_key(heap_fields, N_HEAP, key);

        child_key(ptr, sizeof ptr, "/heap", key);
        if (f == NULL)
            return unknown_key(src, ptr, key, heap_fields, N_HEAP, NULL, 0);
        if ((rc = apply_field(h, f, v, src, ptr)) < 0)
            return rc;
    }
    /* Cross-field checks, pointing at the key that has to change. */
    need = wl__names_needed(h);
    if (h->interned_strings < need) {
        snprintf(want, sizeof want, "an integer >= %ld (the most distinct "
                 "names one dict of this heap needs)", need);
        v = json_object_get(obj, "interned_strings");
        if (v != NULL)
            return bad_value(src, "/heap/interned_strings", want, v);
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, "/heap", "'interned_strings' must be "
                           "at least %ld", need);
    }
    if (h->instances > 0 && h->models == 0)
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, json_object_get(obj, "models")
                           ? "/heap/models" : "/heap",
                           "instances need at least one model");
    for (long d = 0; d < h->template_depth; d++) {
        level *= h->template_fanout;
        nodes += level;
        if (nodes > MAX_NODES)
            return jpos_errorf(src->err, src->errlen, src->file, src->text,
                               src->len, json_object_get(obj,
                                   "template_depth")
                               ? "/heap/template_depth" : "/heap",
                               "template_fanout^template_depth makes "
                               "templates of over %lld nodes", MAX_NODES);
    }
    return 0;
}

static int
path_ok(const char *p)
{
    size_t i, n = strlen(p);

    if (n == 0 || n > MAX_PATH_LEN || p[0] != '/')
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];

        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#')
            return 0;
    }
    return 1;
}

static int
parse_route(wl_route_spec_t *r, const json_t *obj, const src_t *src,
            const char *rptr)
{
    const char *key;
    json_t *v;
    char ptr[512];
    size_t i;
    int rc;

    if (!json_is_object(obj))
        return bad_value(src, rptr, "a route object", obj);
    for (i = 0; i < N_ROUTE; i++)
        set_default(r, &route_fields[i]);
    json_object_foreach((json_t *)obj, key, v) {
        const field_t *f;

        child_key(ptr, sizeof ptr, rptr, key);
        if (strcmp(key, "path") == 0) {
            if (!json_is_string(v) || !path_ok(json_string_value(v)))
                return bad_value(src, ptr, "a URL path: '/' then up to 255 "
                                 "printable characters, no blank, '?' or "
                                 "'#'", v);
            if ((r->path = strdup(json_string_value(v))) == NULL) {
                seterr(src->err, src->errlen, "%s: out of memory",
                       src->file);
                return -ENOMEM;
            }
            continue;
        }
        if ((f = field_by_key(route_fields, N_ROUTE, key)) == NULL)
            return unknown_key(src, ptr, key, route_fields, N_ROUTE,
                               route_str_keys, 1);
        if ((rc = apply_field(r, f, v, src, ptr)) < 0)
            return rc;
    }
    if (r->path == NULL)
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, rptr, "missing required key 'path'");
    if (r->offset + r->spread > 1.0 + 1e-12) {
        child_key(ptr, sizeof ptr, rptr, "offset");
        if (json_object_get(obj, "offset") == NULL)
            child_key(ptr, sizeof ptr, rptr, "spread");
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, ptr, "offset + spread is %g, past the "
                           "end of the heap (at most 1)",
                           r->offset + r->spread);
    }
    if (r->retain > 0 && r->retain_max == 0) {
        child_key(ptr, sizeof ptr, rptr, "retain_max");
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, ptr, "must be >= 1 when retain is %ld",
                           r->retain);
    }
    return 0;
}

static int
parse_routes(wl_spec_t *s, const json_t *arr, const src_t *src)
{
    char ptr[64], pptr[80], other[64], oname[64];
    size_t i, j;
    int rc;

    if (!json_is_array(arr))
        return bad_value(src, "/routes", "an array of route objects", arr);
    if (json_array_size(arr) == 0 || json_array_size(arr) > MAX_ROUTES)
        return jpos_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, "/routes", "expected 1 to %d routes, "
                           "got %zu", MAX_ROUTES, json_array_size(arr));
    s->routes = calloc(json_array_size(arr), sizeof *s->routes);
    if (s->routes == NULL) {
        seterr(src->err, src->errlen, "%s: out of memory", src->file);
        return -ENOMEM;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        child_index(ptr, sizeof ptr, "/routes", i);
        s->nroutes = i + 1;             /* so that free sees the path */
        if ((rc = parse_route(&s->routes[i], json_array_get(arr, i), src,
                              ptr)) < 0)
            return rc;
        for (j = 0; j < i; j++) {
            if (strcmp(s->routes[j].path, s->routes[i].path) != 0)
                continue;
            child_key(pptr, sizeof pptr, ptr, "path");
            child_index(other, sizeof other, "/routes", j);
            jpos_field_name(other, oname, sizeof oname);
            return jpos_errorf(src->err, src->errlen, src->file, src->text,
                               src->len, pptr, "duplicate route path \"%s\" "
                               "(also in %s)", s->routes[i].path, oname);
        }
    }
    return 0;
}

static int
name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > MAX_NAME_LEN)
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_'
            && s[i] != '-')
            return 0;
    return 1;
}

/* The workload's name when the text has none: the file's base name
 * without ".json". */
static char *
name_from_file(const char *file)
{
    const char *b = strrchr(file, '/');
    size_t n;
    char *out;

    b = b ? b + 1 : file;
    n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".json") == 0)
        n -= 5;
    if ((out = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(out, b, n);
    out[n] = '\0';
    return out;
}

static int
parse_text(const char *text, size_t len, const char *file, wl_spec_t **out,
           char *err, size_t errlen)
{
    src_t src = { file, text, len, err, errlen };
    json_error_t je;
    json_t *root, *v;
    const char *key;
    wl_spec_t *s = NULL;
    char ptr[512];
    size_t i;
    int rc = -EINVAL;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        char jtext[4 * JSON_ERROR_TEXT_LENGTH];

        /* one printable line: see jpos_printable() */
        jpos_printable(jtext, sizeof jtext, je.text, sizeof je.text);
        seterr(err, errlen, "%s:%d:%d: invalid JSON: %s", file, je.line,
               je.column, jtext);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        rc = bad_value(&src, "", "a JSON object with \"heap\" and "
                       "\"routes\"", root);
        goto out;
    }
    if ((s = calloc(1, sizeof *s)) == NULL)
        goto oom;
    for (i = 0; i < N_HEAP; i++)
        set_default(&s->heap, &heap_fields[i]);
    /* Keys in file order, so that the first mistake is the one named. */
    json_object_foreach(root, key, v) {
        child_key(ptr, sizeof ptr, "", key);
        if (strcmp(key, "name") == 0) {
            if (!json_is_string(v) || !name_ok(json_string_value(v))) {
                rc = bad_value(&src, ptr, "a name of 1 to 64 letters, "
                               "digits, '.', '_' or '-'", v);
                goto out;
            }
            if ((s->name = strdup(json_string_value(v))) == NULL)
                goto oom;
        } else if (strcmp(key, "description") == 0) {
            if (!json_is_string(v)) {
                rc = bad_value(&src, ptr, "a string", v);
                goto out;
            }
            if ((s->description = strdup(json_string_value(v))) == NULL)
                goto oom;
        } else if (strcmp(key, "heap") == 0) {
            if ((rc = parse_heap(&s->heap, v, &src)) < 0)
                goto out;
        } else if (strcmp(key, "routes") == 0) {
            if ((rc = parse_routes(s, v, &src)) < 0)
                goto out;
        } else {
            rc = unknown_key(&src, ptr, key, NULL, 0, top_keys,
                             sizeof top_keys / sizeof top_keys[0]);
            goto out;
        }
    }
    if (s->routes == NULL) {
        rc = jpos_errorf(err, errlen, file, text, len, "",
                         "missing required key 'routes'");
        goto out;
    }
    if (s->name == NULL && (s->name = name_from_file(file)) == NULL)
        goto oom;
    *out = s;
    s = NULL;
    rc = 0;
    goto out;

oom:
    seterr(err, errlen, "%s: out of memory", file);
    rc = -ENOMEM;
out:
    wl_spec_free(s);
    json_decref(root);
    return rc;
}

/* ---- loading ---------------------------------------------------------- */

int
wl_load_file(const char *path, wl_spec_t **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = jpos_read_file(path, MAX_FILE_BYTES, &text, &len)) < 0) {
        seterr(err, errlen, "%s: cannot read workload file: %s", path,
               strerror(-rc));
        return rc;
    }
    rc = parse_text(text, len, path, out, err, errlen);
    free(text);
    return rc;
}

int
wl_load_string(const char *json, const char *name, wl_spec_t **out,
               char *err, size_t errlen)
{
    return parse_text(json, strlen(json), name ? name : "<json>", out, err,
                      errlen);
}

const char *
wl_default_json(void)
{
    return wl_webapp_json;
}

int
wl_load_default(wl_spec_t **out, char *err, size_t errlen)
{
    return wl_load_string(wl_webapp_json, "webapp.json (embedded)", out,
                          err, errlen);
}

void
wl_spec_free(wl_spec_t *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nroutes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s->name);
    free(s->description);
    free(s);
}

const char *
wl_spec_name(const wl_spec_t *s)
{
    return s->name;
}

/* ---- back to JSON ----------------------------------------------------- */

static int
fields_to_json(json_t *obj, const void *base, const field_t *fields,
               size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const field_t *f = &fields[i];
        json_t *v = f->type == F_INT
                    ? json_integer(*CFLONG(base, f))
                    : json_real(*CFDOUBLE(base, f));

        if (json_object_set_new(obj, f->key, v) < 0)
            return -1;
    }
    return 0;
}

json_t *
wl_spec_to_json(const wl_spec_t *s)
{
    json_t *root = json_object(), *heap = json_object(),
           *routes = json_array();
    size_t i;

    if (root == NULL || heap == NULL || routes == NULL)
        goto error;
    if (json_object_set_new(root, "name", json_string(s->name)) < 0
        || (s->description != NULL
            && json_object_set_new(root, "description",
                                   json_string(s->description)) < 0)
        || fields_to_json(heap, &s->heap, heap_fields, N_HEAP) < 0)
        goto error;
    for (i = 0; i < s->nroutes; i++) {
        json_t *r = json_object();

        if (r == NULL || json_array_append_new(routes, r) < 0
            || json_object_set_new(r, "path",
                                   json_string(s->routes[i].path)) < 0
            || fields_to_json(r, &s->routes[i], route_fields, N_ROUTE) < 0)
            goto error;
    }
    if (json_object_set_new(root, "heap", heap) < 0) {
        heap = NULL;
        goto error;
    }
    heap = NULL;
    if (json_object_set_new(root, "routes", routes) < 0) {
        routes = NULL;
        goto error;
    }
    return root;

error:
    json_decref(heap);
    json_decref(routes);
    json_decref(root);
    return NULL;
}

/* ---- query overrides -------------------------------------------------- */

int
wl__route_override(wl_route_spec_t *r, const char *key, const char *value,
                   char *err, size_t errlen)
{
    const field_t *f = field_by_key(route_fields, N_ROUTE, key);
    char want[96], *end;

    if (f == NULL) {
        seterr(err, errlen, "unknown query key '%.64s'", key);
        return -EINVAL;
    }
    expected(f, want, sizeof want);
    if (*value == '\0' || isspace((unsigned char)*value))
        goto bad;
    errno = 0;
    if (f->type == F_INT) {
        long long v = strtoll(value, &end, 10);

        if (errno != 0 || *end != '\0' || v < f->imin || v > f->imax)
            goto bad;
        *FLONG(r, f) = (long)v;
    } else {
        double v = strtod(value, &end);

        if (errno != 0 || *end != '\0' || !(v >= f->dmin && v <= f->dmax))
            goto bad;
        *FDOUBLE(r, f) = v;
    }
    return 0;

bad:
    seterr(err, errlen, "query '%s': expected %s, got '%.64s'", key, want,
           value);
    return -EINVAL;
}
