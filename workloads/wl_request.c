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
 *   response     a JSON body (jansson, malloc) of `response_items` items
 *                describing the objects read.
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

static json_t *
item(size_t i, rt_obj_t *o)
{
    json_t *it = json_pack("{s:I}", "i", (json_int_t)i);
    size_t len = 0;
    int has_len = 1;

    if (it == NULL || o == NULL)
        return it;
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
    if (json_object_set_new(it, "type", json_string(rt_type_name(o))) < 0
        || (has_len && json_object_set_new(it, "len",
                                           json_integer((json_int_t)len))
                       < 0)
        || (o->type == &rt_str_type
            && json_object_set_new(it, "text",
                                   json_stringn(rt_str_data(o),
                                                len > 40 ? 40 : len)) < 0)) {
        json_decref(it);
        return NULL;
    }
    return it;
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
    json_t *items = json_array(), *o;
    rt_obj_t *body = response_objects(app, r, npicked);
    size_t i;

    if (items == NULL || body == NULL) {
        json_decref(items);
        rt_xdecref(body);
        return -ENOMEM;
    }
    for (i = 0; i < (size_t)r->response_items; i++) {
        rt_obj_t *src = npicked ? app->picked[i % npicked] : NULL;

        if (json_array_append_new(items, item(i, src)) < 0) {
            json_decref(items);
            rt_decref(body);
            return -ENOMEM;
        }
    }
    rt_decref(body);                    /* serialized: the body goes */
    o = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
                  "route", r->path, "items", items,
                  "objects_read", (json_int_t)res->objects_read,
                  "objects_touched", (json_int_t)res->objects_touched,
                  "temporaries", (json_int_t)res->temporaries,
                  "cycles_made", (json_int_t)res->cycles_made,
                  "retained", (json_int_t)res->retained,
                  "cached", (json_int_t)wl_app_cached(app));
    return finish(res, 200, o);
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
