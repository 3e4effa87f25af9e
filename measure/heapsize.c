/*
 * heapsize.c -- objects and bytes per type over the whole heap; see
 * heapsize.h.  One walk, a small table of types (rt_kind gives the few
 * static ones), a JSON object at the end.
 */
#include "heapsize.h"

#include <string.h>

#define MAX_KINDS 64

typedef struct {
    const rt_type_t *kind[MAX_KINDS];
    size_t objects[MAX_KINDS], bytes[MAX_KINDS];
    size_t n;
} tally_t;

static void
on_block(rt_obj_t *o, const void *block, size_t len, void *arg)
{
    tally_t *t = arg;
    const rt_type_t *k = rt_kind(o);
    size_t i;
    for (i = 0; i < t->n && t->kind[i] != k; i++)
        ;
    if (i == t->n) {
        if (t->n == MAX_KINDS)
            return;
        t->kind[t->n++] = k;
    }
    /* The object's own block starts at most 32 bytes before it (gc head,
     * pre-header); its other blocks are allocations of their own. */
    if ((uintptr_t)block <= (uintptr_t)o
        && (uintptr_t)o - (uintptr_t)block <= 32)
        t->objects[i]++;
    t->bytes[i] += len;
}

json_t *
ms_heap_by_type(rt_heap_t *h)
{
    tally_t t;
    memset(&t, 0, sizeof t);
    if (rt_heap_walk(h, on_block, &t) < 0)
        return NULL;
    json_t *j = json_object();
    for (size_t i = 0; j != NULL && i < t.n; i++) {
        json_t *e = json_pack("{s:I, s:I}", "objects",
                              (json_int_t)t.objects[i], "bytes",
                              (json_int_t)t.bytes[i]);
        if (e == NULL || json_object_set_new(j, t.kind[i]->name, e) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}
