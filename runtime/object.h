/*
 * object.h -- the runtime's objects: CPython's layout and refcounting.
 *
 * Every object starts with a refcount and a type pointer, in the object,
 * so reading an object (incref + decref) writes its page, as in CPython.
 * Containers of the GC-able types carry a 16-byte gc_head_t before the
 * object (CPython's PyGC_Head); see gc.h.  Immortal objects (PEP 683)
 * carry RT_IMMORTAL_REFCNT and are never written by incref/decref.
 *
 * References: a function returning rt_obj_t * returns a new reference
 * unless its comment says "borrowed"; a function ending in _steal takes
 * the caller's reference, and drops it on failure too.  Errors are NULL or
 * -1 (out of memory, bad index, missing key).
 */
#ifndef COWLAB_OBJECT_H
#define COWLAB_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "wkinds.h"

typedef struct rt_type rt_type_t;
typedef struct rt_obj {
    intptr_t refcnt;
    rt_type_t *type;
} rt_obj_t;

typedef int (*rt_visit_fn)(rt_obj_t *o, void *arg);

#define RT_TPFLAG_GC        1u      /* has a gc_head_t; may be tracked */

struct rt_type {
    const char *name;
    unsigned flags;
    void (*dealloc)(rt_obj_t *o);   /* refcount reached zero */
    /* Call visit on each referenced object; stop at a nonzero return. */
    int (*traverse)(rt_obj_t *o, rt_visit_fn visit, void *arg);
    /* Drop every reference the object holds (breaks cycles); 0. */
    int (*clear)(rt_obj_t *o);
};

extern rt_type_t rt_none_type, rt_bool_type, rt_int_type, rt_float_type,
                 rt_str_type, rt_bytes_type, rt_tuple_type, rt_list_type,
                 rt_dict_type, rt_class_type, rt_instance_type,
                 rt_slots_type, rt_function_type, rt_module_type;

/* PEP 683: a refcount no live program reaches; incref/decref leave it. */
#define RT_IMMORTAL_REFCNT  ((intptr_t)1 << 40)

/* Deallocate an object whose refcount reached zero. */
void rt_dealloc(rt_obj_t *o);

static inline int
rt_is_immortal(const rt_obj_t *o)
{
    return o->refcnt >= RT_IMMORTAL_REFCNT;
}

static inline void
rt_incref(rt_obj_t *o)
{
    if (rt_is_immortal(o))
        return;
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    o->refcnt++;
}

static inline void
rt_decref(rt_obj_t *o)
{
    if (rt_is_immortal(o))
        return;
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    if (--o->refcnt == 0)
        rt_dealloc(o);
}

static inline void
rt_xdecref(rt_obj_t *o)
{
    if (o != NULL)
        rt_decref(o);
}

static inline int
rt_is_gc(const rt_obj_t *o)
{
    return (o->type->flags & RT_TPFLAG_GC) != 0;
}

static inline const char *
rt_type_name(const rt_obj_t *o)
{
    return o->type->name;
}

/* ---- the heap: one per process, like one interpreter ------------------ */

typedef struct rt_heap rt_heap_t;

/* Start the runtime (allocator, collector, singletons); NULL if one is
 * already running or memory ran out. */
rt_heap_t *rt_heap_new(void);
/* Tear everything down without measuring (tests); see rt_finalize(). */
void rt_heap_free(rt_heap_t *h);
/* Live objects right now (allocations minus deallocations). */
size_t rt_heap_objects(const rt_heap_t *h);
/* sys.modules: a dict name -> module, the heap's roots.  Borrowed. */
rt_obj_t *rt_heap_modules(rt_heap_t *h);

/* Singletons (borrowed; incref to keep). */
rt_obj_t *rt_none(rt_heap_t *h);
rt_obj_t *rt_true(rt_heap_t *h);
rt_obj_t *rt_false(rt_heap_t *h);

/* ---- atoms ------------------------------------------------------------ */

/* Small ints (-5..256) are shared singletons, as in CPython. */
rt_obj_t *rt_int_new(rt_heap_t *h, int64_t v);
int64_t rt_int_value(const rt_obj_t *o);
rt_obj_t *rt_float_new(rt_heap_t *h, double v);
double rt_float_value(const rt_obj_t *o);
rt_obj_t *rt_str_new(rt_heap_t *h, const char *s, size_t len);
rt_obj_t *rt_str_from(rt_heap_t *h, const char *s);
/* The interned string equal to s: one object per distinct text. */
rt_obj_t *rt_str_intern(rt_heap_t *h, const char *s, size_t len);
const char *rt_str_data(const rt_obj_t *o);
size_t rt_str_len(const rt_obj_t *o);
rt_obj_t *rt_bytes_new(rt_heap_t *h, const void *p, size_t len);
size_t rt_bytes_len(const rt_obj_t *o);
const uint8_t *rt_bytes_data(const rt_obj_t *o);
/* Hash of a hashable atom or tuple (computed once for str and cached in
 * the object, lazily, as CPython does); -1 if unhashable. */
intptr_t rt_hash(rt_obj_t *o);
/* Value equality for atoms and tuples; identity for the rest. */
int rt_eq(rt_obj_t *a, rt_obj_t *b);

/* ---- tuple ------------------------------------------------------------ */

/* A tuple of n NULL items; fill it with rt_tuple_set_steal(). */
rt_obj_t *rt_tuple_new(rt_heap_t *h, size_t n);
void rt_tuple_set_steal(rt_obj_t *t, size_t i, rt_obj_t *v);
rt_obj_t *rt_tuple_get(const rt_obj_t *t, size_t i);    /* borrowed */
size_t rt_tuple_len(const rt_obj_t *t);

/* ---- list ------------------------------------------------------------- */

rt_obj_t *rt_list_new(rt_heap_t *h);
int rt_list_append(rt_obj_t *l, rt_obj_t *v);
int rt_list_append_steal(rt_obj_t *l, rt_obj_t *v);
int rt_list_insert(rt_obj_t *l, size_t i, rt_obj_t *v);
int rt_list_set(rt_obj_t *l, size_t i, rt_obj_t *v);
int rt_list_del(rt_obj_t *l, size_t i);
rt_obj_t *rt_list_pop(rt_obj_t *l);                      /* new ref */
rt_obj_t *rt_list_get(const rt_obj_t *l, size_t i);     /* borrowed */
size_t rt_list_len(const rt_obj_t *l);
size_t rt_list_allocated(const rt_obj_t *l);

/* ---- dict: insertion-ordered compact hash table (CPython 3.6+) -------- */

rt_obj_t *rt_dict_new(rt_heap_t *h);
int rt_dict_set(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v);
int rt_dict_set_steal(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v); /* both */
/* d[s] = v with s interned. */
int rt_dict_set_str(rt_heap_t *h, rt_obj_t *d, const char *s, rt_obj_t *v);
rt_obj_t *rt_dict_get(rt_obj_t *d, rt_obj_t *k);        /* borrowed */
rt_obj_t *rt_dict_get_str(rt_heap_t *h, rt_obj_t *d, const char *s);
int rt_dict_del(rt_obj_t *d, rt_obj_t *k);              /* -1: missing */
size_t rt_dict_len(const rt_obj_t *d);
size_t rt_dict_keys_size(const rt_obj_t *d);   /* hash table slots */
/* Iterate in insertion order: start with *pos = 0; borrowed k, v. */
int rt_dict_next(rt_obj_t *d, size_t *pos, rt_obj_t **k, rt_obj_t **v);
void rt_dict_clear(rt_obj_t *d);

/* ---- classes, instances, functions, modules --------------------------- */

/* A class: name, bases (a tuple, or NULL for none), attribute dict. */
rt_obj_t *rt_class_new(rt_heap_t *h, const char *name, rt_obj_t *bases);
rt_obj_t *rt_class_dict(rt_obj_t *cls);                 /* borrowed */
rt_obj_t *rt_class_name(rt_obj_t *cls);                 /* borrowed */
/* An instance with an attribute dict (__dict__). */
rt_obj_t *rt_instance_new(rt_heap_t *h, rt_obj_t *cls);
rt_obj_t *rt_instance_dict(rt_obj_t *inst);             /* borrowed */
rt_obj_t *rt_instance_class(rt_obj_t *inst);            /* borrowed */
/* An instance with n fixed slots (__slots__), all NULL at first. */
rt_obj_t *rt_slots_new(rt_heap_t *h, rt_obj_t *cls, size_t n);
int rt_slots_set(rt_obj_t *inst, size_t i, rt_obj_t *v);
rt_obj_t *rt_slots_get(rt_obj_t *inst, size_t i);       /* borrowed */
size_t rt_slots_len(rt_obj_t *inst);
/* A function: name, code (bytes), globals (a module's dict). */
rt_obj_t *rt_function_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *code,
                          rt_obj_t *globals);
rt_obj_t *rt_function_code(rt_obj_t *f);                /* borrowed */
rt_obj_t *rt_function_globals(rt_obj_t *f);             /* borrowed */
int rt_function_set_defaults(rt_obj_t *f, rt_obj_t *defaults);
/* A module with an empty global dict, registered in sys.modules. */
rt_obj_t *rt_module_new(rt_heap_t *h, const char *name);
rt_obj_t *rt_module_dict(rt_obj_t *m);                  /* borrowed */

/* ---- immortality (PEP 683) -------------------------------------------- */

void rt_immortalize(rt_obj_t *o);
/* Make every object reachable from the roots or tracked by the collector
 * immortal (Cinder's immortalize_heap); returns how many were marked, or
 * -1 out of memory (its stack): the heap is then only partly immortal and
 * must not be measured as an immortal one. */
long rt_immortalize_heap(rt_heap_t *h);

/* ---- walking the heap ------------------------------------------------- */

/* Called once per memory block of an object: its own block (for a
 * container it starts at the gc_head_t) and its item array or key table;
 * len is the allocator's block size (0 if unknown, e.g. under
 * RT_MALLOC_BYPASS). */
typedef void (*rt_walk_fn)(rt_obj_t *o, const void *block, size_t len,
                           void *arg);
/* Visit every object reachable from the roots or tracked by the collector
 * (the permanent generation included), once each.  Reads the heap and
 * writes nothing to it, so a master may walk its heap after fork without
 * copying a page.  Returns the objects visited, or -1 out of memory. */
long rt_heap_walk(rt_heap_t *h, rt_walk_fn fn, void *arg);

/* ---- teardown --------------------------------------------------------- */

typedef struct rt_teardown {
    /* In: called after every object is gone and before the arenas are
     * unmapped (a worker reads its pagemap here); may be NULL. */
    void (*before_release)(void *arg);
    void *arg;
    /* Out: */
    double wall_ms;             /* rt_finalize() from start to end */
    long minflt;                /* minor faults it caused (getrusage) */
    size_t collected;           /* objects freed by its collections */
    size_t deallocated;         /* objects freed in all */
    size_t left;                /* immortal objects left to munmap */
} rt_teardown_t;

/* What Py_Finalize does to the heap: drop the module roots and the
 * interned strings, collect, clear whatever is still tracked, deallocate
 * every mortal object, then release the arenas.  The heap is gone after.
 * st may be NULL; its before_release and arg are read, the rest written.
 * 0, or -1 if the clearing ran out of memory: mortal objects were left
 * (the heap is released all the same), so st's figures are not those of
 * a teardown and must not be reported as one. */
int rt_finalize(rt_heap_t *h, rt_teardown_t *st);
/* The os._exit(0) path: leave at once, writing nothing to the heap. */
_Noreturn void rt_skip_exit(int status);

#endif
