/*
 * gc_layout.h -- what a collector layout (--gc-layout) provides to gc.c.
 * Runtime-internal.  gc.c keeps what every layout shares (thresholds,
 * counts, free lists, callbacks, statistics, the long-lived rule) and
 * calls the layout chosen at start-up for where the per-object state is:
 * gc_inline.c and gc_side.c (the list collector of gc_list.inc on a
 * gc_head_t in front of the object, or in a side slot), gc_bitmap.c (bits
 * per 16-byte granule, no links).
 */
#ifndef COWLAB_GC_LAYOUT_H
#define COWLAB_GC_LAYOUT_H

#include <stddef.h>

#include "internal.h"
#include "mem.h"

typedef struct gc_layout_ops {
    /* Bytes of collector state in front of every GC-able object. */
    size_t hdr;
    void (*init)(void);                 /* a new heap: reset everything */
    /* A GC-able object just made (its hdr bytes in front are its own):
     * 0, or -1 out of memory (side: no slot). */
    int (*obj_new)(rt_obj_t *o);
    void (*obj_free)(rt_obj_t *o);      /* untracked; its memory goes next */
    /* A GC-able object in static storage, never tracked, with hdr zero
     * bytes in front (the object class). */
    void (*init_static)(rt_obj_t *o);
    void (*track)(rt_obj_t *o);
    void (*untrack)(rt_obj_t *o);
    int (*is_tracked)(const rt_obj_t *o);
    /* Collect gen and the younger generations; the objects found
     * unreachable; *survivors: what stayed in (full) or moved to the next
     * generation, the long-lived rule's figure. */
    long (*collect)(int gen, size_t *survivors);
    size_t (*gen_size)(int i);          /* 0..2, 3: permanent */
    size_t (*promote)(void);            /* all to the oldest; how many */
    void (*freeze)(void);
    void (*unfreeze)(void);
    void (*foreach)(void (*fn)(rt_obj_t *o, void *arg), void *arg);
    int (*check)(char *msg, size_t msglen);
    /* Side memory in use (bytes mapped) and its resident pages. */
    void (*side_usage)(size_t *bytes, size_t *pages);
} gc_layout_ops_t;

extern const gc_layout_ops_t gc__inline_ops, gc__side_ops, gc__bitmap_ops;

/* For a layout's passes: does a collection move o to the permanent
 * generation instead of collecting it (3.12: an immortal tracked object)? */
#define GC_IMMORTAL_TO_PERMANENT(o) \
    (rt__mode.gc_immortal_to_permanent && rt_is_immortal(o))

#endif
