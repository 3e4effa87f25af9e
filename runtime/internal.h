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

/* A fresh int object, bypassing the small-int cache. */
rt_obj_t *rt__int_alloc(int64_t v);

/* The separately allocated part of a list (its item array) or a dict (its
 * key table); NULL if none. */
void *rt__list_block(const rt_obj_t *o);
void *rt__dict_block(const rt_obj_t *o);

/* Could o be tracked?  CPython's _PyObject_GC_MAY_BE_TRACKED. */
int rt__may_be_tracked(const rt_obj_t *o);
/* CPython's _PyTuple_MaybeUntrack / _PyDict_MaybeUntrack. */
void rt__tuple_maybe_untrack(rt_obj_t *t);
void rt__dict_maybe_untrack(rt_obj_t *d);

/* Collector internals used by heap.c. */
void gc__init(void);
/* Clear every mortal tracked object (finalization's last pass); returns
 * how many were cleared, or -1 out of memory (then none was). */
long gc__clear_all(void);
/* Call fn on every tracked object, the permanent generation included. */
void gc__foreach(void (*fn)(rt_obj_t *o, void *arg), void *arg);
size_t gc__collecting(void);

struct rt_heap {
    rt_obj_t *none, *true_, *false_;
    rt_obj_t *small_ints[262];      /* -5 .. 256 */
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
