/*
 * gc_side.c -- --gc-layout side: the collector's links and gc_refs live in
 * slots of a side table, in mappings of their own outside the heap's
 * pages (mem_side_map); the object keeps only a pointer to its slot, in
 * the 8 bytes in front of it, written once when the object is made.  The
 * list collector of gc_list.inc runs unchanged on the slots, so a
 * collection, tracking and untracking write slots and never an object's
 * page.
 *
 * A slot is 24 bytes (next, prev, the object): 43,690 to a 1 MiB chunk,
 * handed out in order, freed ones first (most recently freed first, so
 * the slots of young objects stay together and a young collection writes
 * few side pages).  Large objects are no different: every GC-able object,
 * wherever its memory is, has its slot pointer in front of it.
 * Cost: 8 bytes in front of the object + 24 in the side table = 32 bytes
 * per GC-able object, against inline's 16.
 */
#include <stdio.h>
#include <string.h>

#include "gc_layout.h"

typedef struct gc_slot {
    gc_head_t head;                 /* first: a slot is its gc_head_t */
    rt_obj_t *obj;                  /* the object; the free list's link
                                       while free */
} gc_slot_t;

#define SLOT_CHUNK      ((size_t)1 << 20)
#define SLOTS_PER_CHUNK (SLOT_CHUNK / sizeof(gc_slot_t))

#define AS_GC(o)    (*(gc_head_t *const *)((const char *)(o) - sizeof(void *)))
#define FROM_GC(g)  (((const gc_slot_t *)(g))->obj)

#include "gc_list.inc"

static struct {
    gc_slot_t *free;                /* freed slots, through obj */
    gc_slot_t *bump, *end;          /* the current chunk's unused part */
    size_t chunks;
    size_t in_use;
} S;

/* The static object class's slot: never tracked. */
static gc_slot_t static_slot;

static void
side_init(void)
{
    memset(&S, 0, sizeof S);
    l_init();
}

static int
side_obj_new(rt_obj_t *o)
{
    gc_slot_t *s = S.free;
    if (s != NULL) {
        S.free = (gc_slot_t *)s->obj;
    } else {
        if (S.bump == S.end) {
            void *chunk = mem_side_map(SLOT_CHUNK);
            if (chunk == NULL)
                return -1;
            S.bump = chunk;
            S.end = S.bump + SLOTS_PER_CHUNK;
            S.chunks++;
        }
        s = S.bump++;
    }
    RT_WK_GCW(s);
    s->head.next = s->head.prev = 0;
    s->obj = o;
    *(gc_slot_t **)((char *)o - sizeof(void *)) = s;
    S.in_use++;
    return 0;
}

static void
side_obj_free(rt_obj_t *o)
{
    gc_slot_t *s = (gc_slot_t *)AS_GC(o);
    RT_ASSERT(s->head.next == 0 && s->obj == o);
    RT_WK_GCW(s);
    s->obj = (rt_obj_t *)S.free;
    S.free = s;
    S.in_use--;
}

static void
side_init_static(rt_obj_t *o)
{
    memset(&static_slot, 0, sizeof static_slot);
    static_slot.obj = o;
    *(gc_slot_t **)((char *)o - sizeof(void *)) = &static_slot;
}

static void
side_usage(size_t *bytes, size_t *pages)
{
    *bytes = S.chunks * SLOT_CHUNK;
    *pages = mem_side_resident();
}

const gc_layout_ops_t gc__side_ops = {
    sizeof(void *), side_init, side_obj_new, side_obj_free,
    side_init_static, l_track, l_untrack, l_is_tracked, l_collect,
    l_gen_size, l_promote, l_freeze, l_unfreeze, l_foreach, l_check,
    side_usage,
};
