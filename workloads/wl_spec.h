/*
 * wl_spec.h -- the parsed workload, shared by the loader (workload.c) and
 * the builder/handler (webapp.c).  Not for server/: it calls workload.h.
 * Every field here is one key of the JSON format; workload.c's tables give
 * each its range and default, and webapp.json shows them all.
 */
#ifndef COWLAB_WL_SPEC_H
#define COWLAB_WL_SPEC_H

#include <stddef.h>

#include "workload.h"

/* "heap": counts (scaled by the build's scale) and shapes (not scaled). */
typedef struct wl_heap_spec {
    long interned_strings;      /* scaled: identifier pool (rt_str_intern) */
    long modules;               /* scaled: generated library modules */
    long classes_per_module;
    long methods_per_class;
    long functions_per_module;  /* module-level functions (URL handlers) */
    long constants_per_module;  /* atoms in each module's globals */
    long code_bytes;            /* mean code blob per function */
    long config_dicts;          /* scaled: settings dicts of atoms */
    long config_keys;
    long url_patterns;          /* scaled: (path, handler, methods) */
    long templates;             /* scaled: template trees */
    long template_depth;
    long template_fanout;
    long models;                /* scaled: ORM model classes */
    long fields_per_model;      /* field instances, each -> its model */
    long instances;             /* scaled: model instances */
    long instance_attrs;
    long slots_percent;         /* of instances, with __slots__ */
} wl_heap_spec_t;

/* One entry of "routes": what a request to `path` does. */
typedef struct wl_route_spec {
    char *path;
    long reads;                 /* shared objects picked and walked */
    double spread;              /* fraction of the index reads draw from */
    double offset;              /* where that window starts, 0..1-spread */
    double hot;                 /* fraction of reads from the hot set */
    long walk_depth;            /* 0: the object; 1: + children; 2: + theirs */
    long walk_width;            /* children looked at per level */
    long temporaries;           /* containers alive together, then dropped */
    long cyclic_garbage;        /* cycles left behind */
    long retain;                /* cache entries kept per request */
    long retain_max;            /* cache capacity (oldest evicted) */
    long response_items;        /* items in the JSON response */
} wl_route_spec_t;

struct wl_spec {
    char *name;
    char *description;
    wl_heap_spec_t heap;
    size_t nroutes;
    wl_route_spec_t *routes;
};

/*
 * Apply one query override "key=value" to a copy of a route: the same keys
 * (but path), ranges and messages as the JSON.  0, or -EINVAL with a
 * message in err.
 */
int wl__route_override(wl_route_spec_t *r, const char *key,
                       const char *value, char *err, size_t errlen);

/* Distinct interned names the builder's largest dict needs: the minimum
 * size of the identifier pool. */
long wl__names_needed(const wl_heap_spec_t *h);

#endif /* COWLAB_WL_SPEC_H */
