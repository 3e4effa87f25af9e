/*
 * internal.h -- what the runtime's own files share and nobody else calls.
 * Like CPython's pycore_*.h: only code built with RT_BUILD_CORE sees it.
 */
#ifndef COWLAB_INTERNAL_H
#define COWLAB_INTERNAL_H

#ifndef RT_BUILD_CORE
#error "internal.h is for the runtime's own files (define RT_BUILD_CORE)"
#endif

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "object.h"
#include "gc.h"

/*
 * gc_head_t: two links before every GC-able object (CPython's PyGC_Head).
 *   next == 0           the object is not tracked.
 *   next, prev          the doubly linked list of its generation.
 * During a collection of generation N, for the objects of N only:
 *   prev                (gc_refs << GC_REFS_SHIFT) | flags: the list is
 *                       singly linked through next meanwhile.
 *   next & GC_NEXT_UNREACHABLE   parked on the tentatively-unreachable list.
 */
typedef struct gc_head {
    uintptr_t next;
    uintptr_t prev;
} gc_head_t;

#define RT_AS_GC(o)     ((gc_head_t *)(o) - 1)

/* --write-kinds (wkinds.h): the kind of the write about to be made. */
#define RT_WK_GCW(g)        RT_WK_NOTE((g), RT_WK_GC)
#define RT_WK_PAYLOAD_AT(p) RT_WK_NOTE((p), RT_WK_PAYLOAD)
#define RT_WK_ALLOC_AT(p)   RT_WK_NOTE((p), RT_WK_ALLOC)
#define RT_FROM_GC(g)   ((rt_obj_t *)((gc_head_t *)(g) + 1))

/* CPython 3.11+'s pre-header: two words before the gc_head_t of an object
 * whose type has RT_TPFLAG_PREHEADER (a plain instance: its values block
 * and its dict, once made). */
#define RT_PREHEADER_SIZE   16
typedef struct rt_preheader {
    void *values;               /* the attribute values block, or NULL */
    rt_obj_t *dict;             /* __dict__ once asked for, or NULL */
} rt_preheader_t;
#define RT_PREHEADER(o) \
    ((rt_preheader_t *)((char *)(o) - rt__mode.gc_hdr) - 1)

/* Where the memory block of o starts (the pre-header, the collector's
 * header or the object itself). */
#define rt__obj_block(o) rt__obj_block_(o)

/*
 * The runtime's mode: the sizes and rules of the CPython version chosen at
 * start-up (rt_heap_new_opts).  Set before anything is allocated; every
 * file reads it, nothing above the runtime sees it.
 */
typedef struct rt_mode {
    rt_python_t python;
    size_t str_header;          /* bytes before a str's text: 48 in 3.11
                                   (PyASCIIObject with wstr), 40 in 3.12 */
    size_t function_size;       /* PyFunctionObject: 136, 144 (3.12 adds
                                   func_typeparams) */
    size_t code_size;           /* PyCodeObject with the template's six
                                   bytes of bytecode: 192, 200 */
    size_t class_size;          /* PyHeapTypeObject + one PyMemberDef, as
                                   type() allocates it: 944, 960 */
    size_t instance_size;       /* a plain instance after its gc_head_t:
                                   24 (3.11: a weakref slot), 16 (3.12:
                                   the weakref sits in the pre-header) */
    int immortal_statics;       /* None, True, False, small ints (3.12) */
    int immortal_interned;      /* every interned str (3.12) */
    int gc_immortal_to_permanent; /* update_refs moves immortal tracked
                                   objects to the permanent generation */
    rt_gc_layout_t gc_layout;   /* --gc-layout */
    size_t gc_hdr;              /* bytes of collector state in front of a
                                   GC-able object: 16 (inline), 8 (side:
                                   its slot's address), 0 (bitmap) */
    rt_refcount_t refcount;     /* --refcount */
} rt_mode_t;

extern rt_mode_t rt__mode;

static inline void *
rt__obj_block_(const rt_obj_t *o)
{
    if (o->type->flags & RT_TPFLAG_PREHEADER)
        return (char *)o - rt__mode.gc_hdr - RT_PREHEADER_SIZE;
    if (o->type->flags & RT_TPFLAG_GC)
        return (char *)o - rt__mode.gc_hdr;
    return (void *)o;
}
/* Set rt__mode for the options (their version, layout, refcounts). */
void rt__mode_set(const rt_opts_t *o);

/* Object memory: from the pools, or from malloc() when the build asks
 * (RT_MALLOC_BYPASS, so AddressSanitizer sees every object). */
void *rt__obj_alloc(size_t size);
void rt__obj_free(void *p);
void *rt__obj_realloc(void *p, size_t size);
/* Free every object block still allocated (finalization's last step). */
void rt__obj_release_all(void);
/* A GC-able object of size bytes (its gc_head_t comes in front): counts
 * toward generation 0 and may run a collection first, as CPython does. */
rt_obj_t *rt__gc_alloc(size_t size, rt_type_t *type);
void rt__gc_free(rt_obj_t *o);
/* Set refcount 1 and type on fresh memory; count the object. */
void rt__obj_init(rt_obj_t *o, rt_type_t *type);

/* Trashcan: a container's dealloc brackets its work with these so that a
 * long chain of nested containers is freed iteratively.  begin returns 0
 * when the object was put aside to be freed later. */
int rt__trash_begin(rt_obj_t *o);
void rt__trash_end(void);

/* The hash a str of this text has (rt_hash), without making one. */
intptr_t rt__hash_text(const char *s, size_t len);

/* A fresh int object, bypassing the small-int cache. */
rt_obj_t *rt__int_alloc(int64_t v);
/* Set up the static singletons (None, True, False, small ints) and the
 * static class object for the mode in force; idempotent. */
void rt__statics_init(rt_heap_t *h);
/* 1 if o is one of those static objects (not in the heap). */
int rt__is_static(const rt_obj_t *o);
void rt__object_class_init(rt_heap_t *h);
/* The object class's subclass table (a heap dict, or NULL): a root. */
rt_obj_t **rt__object_subclasses(void);
/* Set a str's interned state (immortal in 3.12); 1 if o is interned. */
void rt__str_set_interned(rt_obj_t *o);
/* 3.11's _PyUnicode_ClearInterned, per string: state "not interned". */
void rt__str_set_uninterned(rt_obj_t *o);
int rt__str_is_interned(const rt_obj_t *o);

/* The separately allocated part of a list (its item array), a dict (its
 * key table, unless shared), an instance (its values block) or a class
 * (its instances' shared keys); NULL if none. */
void *rt__list_block(const rt_obj_t *o);
void *rt__dict_block(const rt_obj_t *o);
void *rt__instance_block(const rt_obj_t *o);
void *rt__class_block(const rt_obj_t *o);

/* Shared keys (CPython's ht_cached_keys) for the instances of a class:
 * a split table of 64 slots, 30 names at most. */
typedef struct rt_keys rt_keys_t;
rt_keys_t *rt__keys_new_shared(void);
void rt__keys_free(rt_keys_t *k);
/* A new instance's values block: CPython shrinks the shared keys' usable
 * count by one per new object (down to 1) and sizes the block from what
 * is left; *n gets its slot count. */
void *rt__values_new(rt_keys_t *k, size_t *n);
void rt__values_free(void *values);
/* The values block's slots (n of them), and how many are set. */
rt_obj_t **rt__values_slots(void *values);
size_t rt__values_len(const void *values);
/* Index of str name in the shared keys, adding it (add != 0) if there is
 * room; -1 if it is not there and cannot be.  An index is always inside
 * the values block of every live instance: a block has nentries + usable
 * slots when made, and usable only shrinks. */
long rt__keys_index(rt_keys_t *k, rt_obj_t *name, int add);
/* Names in the shared keys so far (slots 0 .. n-1 of every block). */
long rt__keys_nentries(const rt_keys_t *k);
/* Record that slot ix was set for the first time (insertion order). */
void rt__values_order_add(void *values, long ix);
/* Name of slot ix (borrowed). */
rt_obj_t *rt__keys_name(rt_keys_t *k, long ix);
/* A dict holding the values' attributes, in their order (the model's
 * materialized __dict__: CPython keeps a split table that shares the
 * keys; see class.c); the values block is left empty. */
rt_obj_t *rt__dict_from_values(rt_keys_t *k, void *values);

/* del d[value] for an int key, without making an int (a dealloc must not
 * fail for want of memory); 0, or -1 if absent. */
int rt__dict_del_int(rt_obj_t *d, int64_t value);

/* Module teardown (finalize): CPython's _PyModule_ClearDict. */
void rt__module_clear_dict(rt_obj_t *d);
/* The module's weak-reference slot (finalize's "is it still alive"). */
int **rt__module_weak(rt_obj_t *m);

/* Could o be tracked?  CPython's _PyObject_GC_MAY_BE_TRACKED. */
int rt__may_be_tracked(const rt_obj_t *o);
/* CPython's _PyTuple_MaybeUntrack / _PyDict_MaybeUntrack. */
void rt__tuple_maybe_untrack(rt_obj_t *t);
/* 1 if rt__tuple_maybe_untrack() would untrack t (no item may be
 * tracked, none is NULL). */
int rt__tuple_untrackable(const rt_obj_t *t);
void rt__dict_maybe_untrack(rt_obj_t *d);

/* --refcount split (rc.c): o is no longer shared (rt_immortalize: its
 * entry goes, its count no longer matters); and the table freed with the
 * heap (rt_finalize). */
void rt__rc_unshare(rt_obj_t *o);
void rt__rc_fini(void);
/* rt_warmup(): compute and cache o's hash if o is a str whose hash is not
 * cached yet; 1 if it did, else 0. */
int rt__str_cache_hash(rt_obj_t *o);

/* Collector internals used by heap.c. */
void gc__init(void);
/* A full collection whatever the collector's settings (CPython's
 * _PyGC_CollectNoFail); -1 if one is already running. */
long gc__collect_nofail(void);
/* Call fn on every tracked object, the permanent generation included. */
void gc__foreach(void (*fn)(rt_obj_t *o, void *arg), void *arg);
size_t gc__collecting(void);
/* A GC-able object in static storage (the object class), never tracked:
 * the layout sets up its header. */
void gc__init_static(rt_obj_t *o);
/* Move every tracked object of the younger generations to the oldest;
 * how many (warm-up). */
size_t gc__promote_all(void);
/* The collector's part of rt_get_overhead(): gc_objects, gc_inline_bytes,
 * gc_side_bytes, gc_side_pages. */
void gc__overhead(rt_overhead_t *out);

struct rt_heap {
    rt_python_t python;
    rt_obj_t *none, *true_, *false_;    /* static storage */
    rt_obj_t *small_ints[262];      /* -5 .. 256, static storage */
    rt_obj_t *object_class;         /* static storage */
    rt_obj_t *interned;             /* dict: str -> the same str */
    rt_obj_t *modules;              /* dict: name -> module */
    size_t nobjects;                /* live objects */
    size_t ndeallocs;               /* deallocations since start */
    int trash_nesting;              /* container deallocs in progress */
    rt_obj_t *trash_later;          /* put aside, linked through gc prev */
    int trash_draining;
};

/* The running heap (one per process), or NULL. */
extern rt_heap_t *rt__heap;

#define RT_NSMALLNEG 5
#define RT_NSMALLPOS 257

#endif
