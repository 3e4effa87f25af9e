/*
 * wl_request.c -- one request against the built app (API: workload.h;
 * the app: wl_app.h, built by webapp.c).  A request does, in order:
 *
 *   reads        pick `reads` shared objects through the malloc'd index
 *                (a `hot` share from the hot set, the rest uniformly from
 *                the window [offset, offset + spread) of the index) and
 *                walk each one as CPython's eval loop would: incref it,
 *                incref/decref up to walk_width children (and, at
 *                walk_depth 2, up to walk_width of each child's children),
 *                decref it.  Refcounts end as they began, but every page
 *                walked has been written: that is the copy-on-write cost
 *                of reading.
 *   temporaries  allocate `temporaries` containers that are alive together
 *                (a result list of dicts and lists), then drop them all:
 *                gen 0 counts allocations minus deallocations, so only a
 *                request whose live containers push the count past the
 *                threshold triggers a collection, as in CPython.
 *   cycles       leave `cyclic_garbage` pairs of lists that refer to each
 *                other: only the collector frees them.
 *   retain       append `retain` entries ([key str, int], 3 objects) to the
 *                route's worker-local cache, overwriting the oldest once
 *                it holds retain_max: the objects that live long enough to
 *                reach generation 2 and, in time, cause full collections.
 *   response     the body as runtime objects (a dict, a list, a dict per
 *                item), as a Python app builds it, then the JSON text
 *                (malloc) of `response_items` items describing the
 *                objects read.
 *
 * Nothing here allocates runtime memory except those deliberate objects
 * (and, once per worker, the cache module): bookkeeping is on the C stack
 * or in the malloc'd app.  Shared objects are never modified, only their
 * refcounts touched, so refcounts are as before once a request returns.
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "wl_app.h"

#define MAX_QUERY 1024

/* ---- reads ------------------------------------------------------------ */

typedef struct walk {
    long width, depth;
    long seen1, seen2;          /* children visited at levels 1 and 2 */
    size_t touched;
} walk_t;

static int
visit2(rt_obj_t *o, void *arg)
{
    walk_t *w = arg;

    if (w->seen2++ >= w->width)
        return 1;
    rt_incref(o);
    w->touched++;
    rt_decref(o);               /* the parent still holds it: never 0 */
    return 0;
}

static int
visit1(rt_obj_t *o, void *arg)
{
    walk_t *w = arg;

    if (w->seen1++ >= w->width)
        return 1;
    rt_incref(o);
    w->touched++;
    if (w->depth >= 2 && o->type->traverse != NULL) {
        w->seen2 = 0;
        o->type->traverse(o, visit2, w);
    }
    rt_decref(o);
    return 0;
}

static void
walk(rt_obj_t *o, walk_t *w)
{
    rt_incref(o);
    w->touched++;
    if (w->depth >= 1 && w->width > 0 && o->type->traverse != NULL) {
        w->seen1 = 0;
        o->type->traverse(o, visit1, w);
    }
    rt_decref(o);
}

/*
 * Reads go in batches: pick BATCH index slots, prefetch them, load their
 * objects, prefetch those, then walk.  The index is an artifact of this
 * harness (CPython follows pointers it already holds), so its cache
 * misses are overlapped rather than paid one by one; the objects'
 * refcount writes, the point of the exercise, are exactly the same.
 */
#define BATCH 16

static size_t
do_reads(wl_app_t *app, const wl_route_spec_t *r, wl_result_t *res)
{
    size_t span = (size_t)(r->spread * (double)app->n);
    size_t off = (size_t)(r->offset * (double)app->n);
    size_t npicked = 0, done, i, k;
    walk_t w = { r->walk_width, r->walk_depth, 0, 0, 0 };
    rt_obj_t **slot[BATCH], *obj[BATCH];

    if (span < 1)
        span = 1;
    if (span > app->n)
        span = app->n;
    if (off > app->n - span)
        off = app->n - span;
    for (done = 0; done < (size_t)r->reads; done += k) {
        k = (size_t)r->reads - done < BATCH ? (size_t)r->reads - done
                                             : BATCH;
        for (i = 0; i < k; i++) {
            if (r->hot > 0 && app->nhot > 0
                && wl__unit(&app->rng) < r->hot) {
                slot[i] = &app->hot[wl__rand(&app->rng) % app->nhot];
                res->hot_reads++;
            } else {
                slot[i] = &app->index[off + wl__rand(&app->rng) % span];
            }
            __builtin_prefetch(slot[i], 0);
        }
        for (i = 0; i < k; i++) {
            obj[i] = *slot[i];
            __builtin_prefetch(obj[i], 1);
        }
        for (i = 0; i < k; i++) {
            walk(obj[i], &w);
            if (npicked < WL_PICKED_MAX)
                app->picked[npicked++] = obj[i];
        }
    }
    res->objects_read = (size_t)r->reads;
    res->objects_touched = w.touched;
    return npicked;
}

/* ---- objects the request makes ------------------------------------------ */

/* The result list: temporaries - 1 containers in a list, alternately a
 * dict {"id": n, "name": identifier} (atoms only: it stays untracked, as
 * in CPython) and a list [identifier, n].  New reference, or NULL. */
static rt_obj_t *
make_temporaries(wl_app_t *app, long n)
{
    rt_heap_t *h = app->h;
    rt_obj_t *list;
    long k;

    if (n <= 0 || (list = rt_list_new(h)) == NULL)
        return NULL;
    for (k = 1; k < n; k++) {
        rt_obj_t *ident = wl__pool(app, wl__rand(&app->rng));
        rt_obj_t *num = rt_int_new(h, k % 256);     /* a small int */
        rt_obj_t *t = k % 2 ? rt_dict_new(h) : rt_list_new(h);
        int bad = t == NULL;

        if (!bad && k % 2)
            bad = rt_dict_set(t, app->names[WL_N_ID], num) < 0
                  || rt_dict_set(t, app->names[WL_N_NAME], ident) < 0;
        else if (!bad)
            bad = rt_list_append(t, ident) < 0
                  || rt_list_append(t, num) < 0;
        rt_decref(num);
        if (bad) {
            rt_xdecref(t);
            rt_decref(list);
            return NULL;
        }
        if (rt_list_append_steal(list, t) < 0) {   /* drops t */
            rt_decref(list);
            return NULL;
        }
    }
    return list;
}

static int
make_cycles(wl_app_t *app, long n, wl_result_t *res)
{
    long i;

    for (i = 0; i < n; i++) {
        rt_obj_t *a = rt_list_new(app->h), *b = rt_list_new(app->h);
        int rc = a && b && rt_list_append(a, b) == 0
                 && rt_list_append(b, a) == 0 ? 0 : -ENOMEM;

        rt_xdecref(a);
        rt_xdecref(b);                  /* a <-> b: only the GC frees them */
        if (rc < 0)
            return rc;
        res->cycles_made++;
    }
    return 0;
}

/* Worker-local state, made on the first request that needs it (so in the
 * worker, after fork): module "wl.worker_cache" with a list of one cache
 * list per route.  Importing it writes sys.modules and the interned dict,
 * as a lazy import in a worker does. */
static int
ensure_caches(wl_app_t *app)
{
    rt_obj_t *m, *caches;
    size_t i;

    if (app->caches != NULL)
        return 0;
    if ((m = rt_module_new(app->h, "wl.worker_cache")) == NULL)
        return -ENOMEM;
    rt_decref(m);                       /* sys.modules holds it */
    if ((caches = rt_list_new(app->h)) == NULL)
        return -ENOMEM;
    for (i = 0; i < app->nroutes; i++) {
        if (rt_list_append_steal(caches, rt_list_new(app->h)) < 0) {
            rt_decref(caches);
            return -ENOMEM;
        }
    }
    if (rt_dict_set(rt_module_dict(m), app->names[WL_N_CACHES], caches) < 0) {
        rt_decref(caches);
        return -ENOMEM;
    }
    rt_decref(caches);
    app->caches = caches;
    for (i = 0; i < app->nroutes; i++) {
        app->state[i].cache = rt_list_get(caches, i);
        app->state[i].next = 0;
    }
    return 0;
}

static int
retain(wl_app_t *app, size_t route, const wl_route_spec_t *r,
       wl_result_t *res)
{
    rt_heap_t *h = app->h;
    wl_route_state_t *st = &app->state[route];
    size_t max = (size_t)r->retain_max;
    char key[32];
    long i;

    if (r->retain <= 0 || max == 0)
        return 0;
    if (ensure_caches(app) < 0)
        return -ENOMEM;
    /* A query may have lowered retain_max: trim to it first. */
    while (rt_list_len(st->cache) > max) {
        rt_decref(rt_list_pop(st->cache));
        res->evicted++;
    }
    if (st->next >= max)
        st->next = 0;
    for (i = 0; i < r->retain; i++) {
        uint64_t serial = app->serial++;
        int len = snprintf(key, sizeof key, "c%llu",
                           (unsigned long long)serial);
        rt_obj_t *e = rt_list_new(h);

        if (e == NULL
            || rt_list_append_steal(e, rt_str_new(h, key, (size_t)len)) < 0
            || rt_list_append_steal(e, rt_int_new(h, 1000 + (int64_t)
                                                  (serial % 1000000000)))
               < 0) {
            rt_xdecref(e);
            return -ENOMEM;
        }
        if (rt_list_len(st->cache) < max) {
            if (rt_list_append_steal(st->cache, e) < 0)
                return -ENOMEM;
        } else {
            int rc = rt_list_set(st->cache, st->next, e);  /* frees oldest */

            rt_decref(e);
            if (rc < 0)
                return -ENOMEM;
            st->next = (st->next + 1) % max;
            res->evicted++;
        }
        res->retained++;
    }
    return 0;
}

size_t
wl_app_cached(const wl_app_t *app)
{
    size_t i, n = 0;

    for (i = 0; i < app->nroutes; i++)
        if (app->state[i].cache != NULL)
            n += rt_list_len(app->state[i].cache);
    return n;
}

/* ---- responses -------------------------------------------------------- */

static int
finish(wl_result_t *res, int status, json_t *body)
{
    if (body == NULL)
        return -ENOMEM;
    res->status = status;
    res->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (res->body == NULL)
        return -ENOMEM;
    res->body_len = strlen(res->body);
    return 0;
}

/* {"error": msg, "path": path}, with the path made printable ASCII so
 * that any request line gives valid JSON. */
static int
error_response(wl_result_t *res, int status, const char *msg,
               const char *path)
{
    char clean[257];
    size_t i;
    json_t *o;

    for (i = 0; path[i] != '\0' && i < sizeof clean - 1; i++)
        clean[i] = path[i] >= ' ' && path[i] < 0x7f ? path[i] : '?';
    clean[i] = '\0';
    o = json_pack("{s:s, s:s}", "error", msg, "path", clean);
    return finish(res, status, o);
}

/*
 * The JSON text, written straight into one malloc'd buffer as jansson's
 * json_dumps(JSON_COMPACT) writes it (the same bytes: keys in order,
 * strings escaped as jansson escapes them, invalid UTF-8 refused as
 * jansson refuses it), without a jansson object per item: 2,000 items were
 * some 18,000 malloc()s a request, which under ASan cost more than the
 * request's own work.
 */
typedef struct {
    char *p;
    size_t n, cap;
    int bad;                    /* out of memory, or a string not UTF-8 */
} jbuf_t;

static void
jb_put(jbuf_t *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *q;

        while (b->n + n + 1 > cap)
            cap *= 2;
        q = realloc(b->p, cap);
        if (q == NULL) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void
jb_puts(jbuf_t *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void
jb_int(jbuf_t *b, long long v)
{
    char num[32];
    int k = snprintf(num, sizeof num, "%lld", v);

    jb_put(b, num, (size_t)k);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none
 * (jansson's utf8_check_full: no overlongs, surrogates or > U+10FFFF). */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* A JSON string as jansson dumps it: \\ \" \b \f \n \r \t, other
 * controls as \u00XX, everything else (UTF-8 included) as it is. */
static void
jb_str(jbuf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    jb_put(b, "\"", 1);
    while (i < n && !b->bad) {
        size_t len = utf8_len(u + i, n - i);
        const char *esc = NULL;
        char seq[8];

        if (len == 0) {
            b->bad = 1;
            break;
        }
        if (len == 1) {
            switch (u[i]) {
            case '\\': esc = "\\\\"; break;
            case '"':  esc = "\\\""; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                if (u[i] < 0x20) {
                    snprintf(seq, sizeof seq, "\\u%04X", u[i]);
                    esc = seq;
                }
            }
        }
        if (esc != NULL) {
            jb_put(b, s + run, i - run);
            jb_puts(b, esc);
            run = i + 1;
        }
        i += len;
    }
    jb_put(b, s + run, i - run);
    jb_put(b, "\"", 1);
}

/* {"i":i,"type":T[,"len":n][,"text":first 40 bytes]} */
static void
item(jbuf_t *b, size_t i, rt_obj_t *o)
{
    size_t len = 0;
    int has_len = 1;

    jb_puts(b, "{\"i\":");
    jb_int(b, (long long)i);
    if (o != NULL) {
        if (o->type == &rt_str_type)
            len = rt_str_len(o);
        else if (o->type == &rt_bytes_type)
            len = rt_bytes_len(o);
        else if (o->type == &rt_list_type)
            len = rt_list_len(o);
        else if (o->type == &rt_dict_type)
            len = rt_dict_len(o);
        else if (o->type == &rt_tuple_type)
            len = rt_tuple_len(o);
        else
            has_len = 0;
        jb_puts(b, ",\"type\":");
        jb_str(b, rt_type_name(o), strlen(rt_type_name(o)));
        if (has_len) {
            jb_puts(b, ",\"len\":");
            jb_int(b, (long long)len);
        }
        if (o->type == &rt_str_type) {
            jb_puts(b, ",\"text\":");
            jb_str(b, rt_str_data(o), len > 40 ? 40 : len);
        }
    }
    jb_put(b, "}", 1);
}

/*
 * The body as a Python app builds it, in runtime objects first:
 * {"items": [{"type": T, "n": i}, ...], "temporaries": n}, a dict per item
 * (T: an instance's class name; None for the other types, whose names are
 * static strings in CPython), then serialized.  Those containers are the
 * request's last temporaries: they go (onto the free lists, as CPython's
 * would) before the request's other temporaries.  New reference, or NULL.
 */
static rt_obj_t *
response_objects(wl_app_t *app, const wl_route_spec_t *r, size_t npicked)
{
    rt_heap_t *h = app->h;
    rt_obj_t **names = app->names;
    rt_obj_t *body = rt_dict_new(h), *items = rt_list_new(h), *n;
    size_t i;
    int bad = body == NULL || items == NULL;

    for (i = 0; !bad && i < (size_t)r->response_items; i++) {
        rt_obj_t *src = npicked ? app->picked[i % npicked] : NULL;
        rt_obj_t *d = rt_dict_new(h), *t = rt_none(h);

        if (src != NULL && (rt_kind(src) == &rt_instance_type
                            || rt_kind(src) == &rt_slots_type))
            t = rt_class_name(rt_instance_class(src));
        n = rt_int_new(h, (int64_t)i);
        bad = d == NULL || n == NULL
              || rt_dict_set(d, names[WL_N_TYPE], t) < 0
              || rt_dict_set(d, names[WL_N_N], n) < 0
              || rt_list_append(items, d) < 0;
        rt_xdecref(n);
        rt_xdecref(d);
    }
    n = bad ? NULL : rt_int_new(h, r->temporaries);
    bad = bad || n == NULL
          || rt_dict_set(body, names[WL_N_ITEMS], items) < 0
          || rt_dict_set(body, names[WL_N_TEMPORARIES], n) < 0;
    rt_xdecref(n);
    rt_xdecref(items);
    if (bad) {
        rt_xdecref(body);
        return NULL;
    }
    return body;
}

static int
ok_response(wl_app_t *app, const wl_route_spec_t *r, size_t npicked,
            wl_result_t *res)
{
    rt_obj_t *body = response_objects(app, r, npicked);
    jbuf_t b = { NULL, 0, 0, body == NULL };
    const struct { const char *key; long long v; } tail[] = {
        { "objects_read", (long long)res->objects_read },
        { "objects_touched", (long long)res->objects_touched },
        { "temporaries", (long long)res->temporaries },
        { "cycles_made", (long long)res->cycles_made },
        { "retained", (long long)res->retained },
        { "cached", (long long)wl_app_cached(app) },
    };
    size_t i;

    jb_puts(&b, "{\"route\":");
    jb_str(&b, r->path, strlen(r->path));
    jb_puts(&b, ",\"items\":[");
    for (i = 0; i < (size_t)r->response_items; i++) {
        if (i > 0)
            jb_put(&b, ",", 1);
        item(&b, i, npicked ? app->picked[i % npicked] : NULL);
    }
    jb_put(&b, "]", 1);
    for (i = 0; i < sizeof tail / sizeof tail[0]; i++) {
        jb_put(&b, ",\"", 2);
        jb_puts(&b, tail[i].key);
        jb_put(&b, "\":", 2);
        jb_int(&b, tail[i].v);
    }
    jb_put(&b, "}", 1);
    rt_xdecref(body);                   /* serialized: the body goes */
    if (b.bad) {
        free(b.p);
        return -ENOMEM;
    }
    res->status = 200;
    res->body = b.p;
    res->body_len = b.n;
    return 0;
}

/* ---- the handler ------------------------------------------------------ */

/* Apply "k=v&k=v" to r; 0, or -EINVAL with a message. */
static int
apply_query(wl_route_spec_t *r, const char *query, char *err, size_t errlen)
{
    char buf[MAX_QUERY + 1], *save = NULL, *tok;

    if (strlen(query) > MAX_QUERY) {
        snprintf(err, errlen, "query longer than %d bytes", MAX_QUERY);
        return -EINVAL;
    }
    strcpy(buf, query);
    for (tok = strtok_r(buf, "&", &save); tok != NULL;
         tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');

        if (eq == NULL) {
            snprintf(err, errlen, "query: expected key=value, got '%.64s'",
                     tok);
            return -EINVAL;
        }
        *eq = '\0';
        if (wl__route_override(r, tok, eq + 1, err, errlen) < 0)
            return -EINVAL;
    }
    if (r->offset + r->spread > 1.0 + 1e-12) {
        snprintf(err, errlen, "query: offset + spread is %g (at most 1)",
                 r->offset + r->spread);
        return -EINVAL;
    }
    return 0;
}

int
wl_handle(wl_app_t *app, const char *path, const char *query,
          wl_result_t *res)
{
    wl_route_spec_t r;
    rt_obj_t *temps = NULL;
    size_t i, npicked;
    char err[256];
    int rc;

    memset(res, 0, sizeof *res);
    if (path == NULL)
        path = "";
    for (i = 0; i < app->nroutes; i++)
        if (strcmp(app->routes[i].path, path) == 0)
            break;
    if (i == app->nroutes)
        return error_response(res, 404, "no such route", path);
    r = app->routes[i];
    if (query != NULL && *query != '\0'
        && apply_query(&r, query, err, sizeof err) < 0)
        return error_response(res, 400, err, path);

    npicked = do_reads(app, &r, res);
    if (r.temporaries > 0) {
        if ((temps = make_temporaries(app, r.temporaries)) == NULL)
            return -ENOMEM;
        res->temporaries = (size_t)r.temporaries;
    }
    if ((rc = make_cycles(app, r.cyclic_garbage, res)) < 0
        || (rc = retain(app, i, &r, res)) < 0)
        goto out;
    rc = ok_response(app, &r, npicked, res);
out:
    rt_xdecref(temps);                  /* the temporaries die here */
    return rc;
}

void
wl_result_fini(wl_result_t *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
