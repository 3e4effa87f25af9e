/*
 * wl_app.h -- the built app, shared by its builder (webapp.c) and its
 * request handler (wl_request.c).  Not for server/: it calls workload.h.
 *
 * Memory: everything here is malloc'd, never runtime memory, so that the
 * master's build leaves no bookkeeping in the heap ranges a worker's
 * copies are counted in.  After fork() a worker writes only the small
 * struct wl_app itself (PRNG, cache state); the index and the hot set are
 * written once, in the master, and only read afterwards.
 */
#ifndef COWLAB_WL_APP_H
#define COWLAB_WL_APP_H

#include <stddef.h>
#include <stdint.h>

#include "wl_spec.h"

/* Names the builder interns first, in this order; requests use them as
 * dict keys without interning anything. */
#define WL_NAMES(X) \
    X(DUNDER_NAME, "__name__") X(DUNDER_MODULE, "__module__") \
    X(TAG, "tag") X(CHILDREN, "children") X(NAME, "name") \
    X(MODEL, "model") X(COLUMN, "column") X(MAX_LENGTH, "max_length") \
    X(FIELDS, "_fields") X(INSTANCES, "_instances") \
    X(URLPATTERNS, "urlpatterns") X(TEMPLATES, "TEMPLATES") \
    X(GET, "GET") X(POST, "POST") X(PUT, "PUT") X(DELETE, "DELETE") \
    X(ID, "id") X(CACHES, "caches") X(ITEMS, "items") X(TYPE, "type") \
    X(N, "n") X(TEMPORARIES, "temporaries")

#define WL_NAME_ENUM(id, text) WL_N_##id,
enum { WL_NAMES(WL_NAME_ENUM) WL_N_COUNT };
#undef WL_NAME_ENUM

/* Objects the build makes whatever the sizes (see wl_spec_objects()):
 * the names; the interned names the runtime adds (__doc__, __package__,
 * __loader__, __spec__ of a module; __dict__, __weakref__ of a root
 * class; __slots__); the object class's subclass table; 4 app modules of
 * 3 objects; in app.models the root class Field (9 objects: name, bases,
 * dict, class, mro, two descriptors, the weakref in object's subclass
 * table and its key), 4 field kinds deriving from it (7: their bases
 * tuple, name, dict, class, mro, weakref, key) and Field's subclass
 * table, the root class Model (9) and the __slots__ root SlotModel (8:
 * its empty slots tuple, name, bases, dict, class, mro, weakref, key);
 * and the urlpatterns and TEMPLATES lists. */
#define WL_FIXED_OBJECTS (WL_N_COUNT + 7 + 1 + 4 * 3 + 9 + 4 * 7 + 1 + 9 \
                          + 8 + 2)

/* How many objects a read remembers for the response items. */
#define WL_PICKED_MAX 256

/* A route's worker-local cache: a list in module "wl.worker_cache",
 * appended to until retain_max, then overwritten as a ring. */
typedef struct wl_route_state {
    rt_obj_t *cache;            /* borrowed (the module holds it); NULL
                                   until the first request that retains */
    size_t next;                /* ring position once full */
} wl_route_state_t;

struct wl_app {
    rt_heap_t *h;
    size_t nroutes;
    wl_route_spec_t *routes;    /* copies, paths included */
    wl_route_state_t *state;    /* per route, worker-local */
    rt_obj_t **index;           /* every object built, in build order */
    size_t n;
    rt_obj_t **hot;             /* the hot set (also in index) */
    size_t nhot;
    size_t pool_start, npool;   /* interned identifiers: index[start..) */
    rt_obj_t *names[WL_N_COUNT];/* borrowed: the interned dict holds them */
    rt_obj_t *caches;           /* worker-local list of the route caches */
    uint64_t rng;               /* request PRNG (splitmix64 state) */
    uint64_t serial;            /* cache entries made, for their keys */
    rt_obj_t *picked[WL_PICKED_MAX];
};

/* splitmix64: the next 64 random bits of *state. */
static inline uint64_t
wl__rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static inline double
wl__unit(uint64_t *state)
{
    return (double)(wl__rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Pool identifier i (mod the pool size), borrowed. */
static inline rt_obj_t *
wl__pool(const wl_app_t *app, size_t i)
{
    return app->index[app->pool_start + i % app->npool];
}

#endif /* COWLAB_WL_APP_H */
