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

/* "objects": a generic heap shape (objects.c builds it).  The kinds, in
 * the order of the "types" and "sizes" keys: */
#define WL_OBJ_KINDS(X) \
    X(DICT, "dict") X(LIST, "list") X(TUPLE, "tuple") X(SET, "set") \
    X(INSTANCE, "instance") X(SLOTS, "slots") X(FUNCTION, "function") \
    X(CLASS, "class") X(CODE, "code") X(STR, "str") X(INT, "int") \
    X(FLOAT, "float")
#define WL_OBJ_ENUM(id, text) WL_OK_##id,
enum { WL_OBJ_KINDS(WL_OBJ_ENUM) WL_OK_COUNT };
#undef WL_OBJ_ENUM

/* A distribution over power-of-two buckets: w[0] weighs the value 0,
 * w[k] (k >= 1) the values 2^(k-1) .. 2^k - 1, uniformly.  For distances
 * (which start at 1) w[k] weighs 2^k .. 2^(k+1) - 1.  The weights need not
 * sum to 1; n > 0 and at least one weight > 0. */
#define WL_HIST_MAX 21
typedef struct wl_hist {
    size_t n;
    double w[WL_HIST_MAX];
} wl_hist_t;

typedef struct wl_objects_spec {
    int present;                /* the file has an "objects" section */
    long count[WL_OK_COUNT];    /* scaled: objects of each kind */
    wl_hist_t size[WL_OK_COUNT];/* items (containers, class: dict
                                   entries) or bytes (str, code); unused
                                   for function, int, float */
    long modules;               /* scaled (>= 1): modules holding roots */
    double interned;            /* share of str interned */
    double ref_container;       /* share of items -> an earlier container */
    wl_hist_t ref_distance;     /* how far back (in containers) */
    double ref_shared;          /* share of atom items -> an atom already
                                   referenced (else a fresh one) */
    double cycle_fraction;      /* of lists, dicts, instances, classes */
    wl_hist_t cycle_size;       /* members, by the size of their cycle */
} wl_objects_spec_t;

/* The kind names, for messages and JSON ("dict", "list", ...). */
extern const char *const wl__obj_kind_names[WL_OK_COUNT];

struct wl_spec {
    char *name;
    char *description;
    wl_heap_spec_t heap;
    wl_objects_spec_t objects;
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

/* Kinds whose "sizes" entry means something (containers, class, str and
 * code); 0 for function, int and float. */
int wl__obj_kind_sized(int kind);

/* sc(n) of workload.h: n times scale, at least 1 unless n is 0. */
size_t wl__scaled(long n, double scale);

/* Objects the "objects" section adds to the heap (0 without one); the
 * formula is in workload.h.  heap_code: the "heap" section's code made
 * the local name "x" already. */
size_t wl__objects_count(const wl_objects_spec_t *os, double scale,
                         int heap_code);

#endif /* COWLAB_WL_SPEC_H */
