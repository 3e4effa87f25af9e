/*
 * fuzz_workload.c -- libFuzzer target for the workload loader
 * (workloads/workload.c: wl_load_string), and, for small specs, the
 * builder and the request handler behind it.
 *
 * Input: the JSON text of a workload (a NUL in it ends the text, as
 * wl_load_string() takes a C string).
 *
 * Oracles (abort() on violation):
 *   - an error leaves *out untouched and a message naming the file, on
 *     one printable line;
 *   - a loaded spec round-trips: wl_spec_to_json() loads back and dumps
 *     to the same JSON (workload.h promises "an equal spec");
 *   - wl_spec_objects() grows with the scale (a wrapped size_t would
 *     not);
 *   - when the spec is small at scale 0.001 (at most FZ_BUILD_MAX
 *     objects, and FZ_BUILD_BYTES of code blobs at most), wl_build() on a
 *     fresh heap adds exactly
 *     wl_spec_objects() objects, the collector's heap check passes, and
 *     every route whose knobs are small answers 200 with valid JSON and
 *     leaves the object count as the route's knobs say (no leak).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gc.h"
#include "workload.h"
#include "wl_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BUILD_SCALE  0.001
#define FZ_BUILD_MAX    20000   /* objects: build only specs this small */
#define FZ_BUILD_BYTES  ((size_t)64 << 20)      /* and objects x code_bytes */
#define FZ_KNOB_MAX     2000    /* per-request counts worth running */

static _Noreturn void
fz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_workload: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

static char *
fz_spec_text(const wl_spec_t *s)
{
    json_t *j = wl_spec_to_json(s);
    char *t;

    if (j == NULL)
        fz_fail("wl_spec_to_json returned NULL", NULL);
    t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (t == NULL)
        fz_fail("json_dumps", NULL);
    return t;
}

static int
fz_route_small(const wl_route_spec_t *r)
{
    return r->reads <= FZ_KNOB_MAX && r->temporaries <= FZ_KNOB_MAX
           && r->cyclic_garbage <= FZ_KNOB_MAX && r->retain <= FZ_KNOB_MAX
           && r->retain_max <= FZ_KNOB_MAX
           && r->response_items <= FZ_KNOB_MAX
           && r->walk_width <= FZ_KNOB_MAX;
}

/* Build at FZ_BUILD_SCALE on a fresh heap; serve every small route. */
static void
fz_build_and_serve(const wl_spec_t *s)
{
    rt_heap_t *heap;
    wl_app_t *app = NULL;
    wl_build_stats_t st;
    size_t want = wl_spec_objects(s, FZ_BUILD_SCALE), before, i;
    char msg[256];

    /* code_bytes is a shape, not scaled: 80 functions of 1 MiB each are
     * a few objects but 80 MiB.  (The loader has no such limit: a typo
     * in code_bytes makes the master allocate until it fails.) */
    if (want > FZ_BUILD_MAX
        || want * (size_t)(s->heap.code_bytes + 64) > FZ_BUILD_BYTES)
        return;
    heap = rt_heap_new();
    if (heap == NULL)
        fz_fail("rt_heap_new returned NULL", NULL);
    before = rt_heap_objects(heap);
    if (wl_build(heap, s, FZ_BUILD_SCALE, 1, &app, &st) < 0)
        fz_fail("wl_build failed on a valid spec", NULL);
    /* The app's index holds the objects a request may pick: a subset
     * (not a class's mro or weakref, nor a code object's parts). */
    if (rt_heap_objects(heap) - before != want || st.objects != want
        || wl_app_objects(app) > want) {
        fprintf(stderr, "built %zu (stats %zu, app %zu), formula %zu\n",
                rt_heap_objects(heap) - before, st.objects,
                wl_app_objects(app), want);
        fz_fail("wl_spec_objects() disagrees with wl_build()", NULL);
    }
    if (gc_check_heap(msg, sizeof msg) != 0)
        fz_fail("heap check after the build", msg);
    for (i = 0; i < s->nroutes; i++) {
        const wl_route_spec_t *r = &s->routes[i];
        wl_result_t res;
        json_t *body;

        if (!fz_route_small(r))
            continue;
        if (wl_handle(app, r->path, NULL, &res) < 0)
            fz_fail("wl_handle: out of memory", r->path);
        if (res.status != 200)
            fz_fail("a route of the spec did not answer 200", res.body);
        body = json_loadb(res.body, res.body_len, 0, NULL);
        if (body == NULL)
            fz_fail("response body is not JSON", res.body);
        json_decref(body);
        if (res.objects_read != (size_t)r->reads)
            fz_fail("objects_read is not the route's reads", r->path);
        wl_result_fini(&res);
    }
    gc_collect(2);
    if (gc_check_heap(msg, sizeof msg) != 0)
        fz_fail("heap check after the requests", msg);
    wl_app_free(app);
    rt_heap_free(heap);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wl_spec_t *s = (wl_spec_t *)0x1, *s2 = NULL;
    char *text, *a, *b, err[1024];
    size_t o_small, o_one, o_big;
    int rc;

    if (size > 65536)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    rc = wl_load_string(text, "fuzz.json", &s, err, sizeof err);
    free(text);
    if (rc < 0) {
        if (s != (wl_spec_t *)0x1)
            fz_fail("a failed load wrote *out", NULL);
        if (strncmp(err, "fuzz.json", 9) != 0)
            fz_fail("error message does not name the file", err);
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                fz_fail("control character in the error message", err);
        return 0;
    }
    if (s == NULL || s == (wl_spec_t *)0x1)
        fz_fail("success without a spec", NULL);

    /* Round trip through wl_spec_to_json(). */
    a = fz_spec_text(s);
    if (wl_load_string(a, "roundtrip.json", &s2, err, sizeof err) < 0)
        fz_fail("wl_spec_to_json() output does not load back", err);
    b = fz_spec_text(s2);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "first:  %s\nsecond: %s\n", a, b);
        fz_fail("spec changed through wl_spec_to_json()", NULL);
    }
    free(a);
    free(b);
    wl_spec_free(s2);

    o_small = wl_spec_objects(s, FZ_BUILD_SCALE);
    o_one = wl_spec_objects(s, 1.0);
    o_big = wl_spec_objects(s, 1000.0);
    if (!(o_small <= o_one && o_one <= o_big))
        fz_fail("wl_spec_objects() shrinks as the scale grows (overflow?)",
                NULL);
    fz_build_and_serve(s);
    wl_spec_free(s);
    return 0;
}
