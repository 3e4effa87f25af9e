/*
 * gc.h -- the generational cycle collector (CPython's gc module).
 * Three generations with thresholds (700, 10, 10), the long-lived-pending
 * rule for full collections, a permanent generation for gc.freeze(), and
 * callbacks around each collection (CPython's gc.callbacks) so a worker can
 * attribute page faults to the collector.
 */
#ifndef COWLAB_GC_H
#define COWLAB_GC_H

#include <stddef.h>
#include <stdint.h>

#include "object.h"

#define GC_NGENS        3
#define GC_GEN_OLDEST   (GC_NGENS - 1)

typedef struct gc_genstats {
    size_t collections;         /* collections of this generation */
    size_t collected;           /* unreachable objects freed */
    size_t uncollectable;       /* always 0: no legacy finalizers here */
    uint64_t time_ns;           /* wall time spent in them */
} gc_genstats_t;

/* Start a container's tracking / stop it / ask (gc.is_tracked). */
void gc_track(rt_obj_t *o);
void gc_untrack(rt_obj_t *o);
int gc_is_tracked(const rt_obj_t *o);

void gc_enable(void);
void gc_disable(void);
int gc_isenabled(void);
/* CPython's thresholds (gc.get_threshold() == (700, 10, 10)): the
 * collector starts with them, and the server's --gc-threshold defaults to
 * them. */
#define GC_THRESHOLD0_DEFAULT 700
#define GC_THRESHOLD1_DEFAULT 10
#define GC_THRESHOLD2_DEFAULT 10

/* gc.set_threshold(t0, t1, t2); t0 == 0 turns automatic collection off
 * (and --gc off is t0 = 0); 0 for t1 or t2 collects that generation each
 * time the younger one is collected, as in CPython. */
void gc_set_threshold(long t0, long t1, long t2);
void gc_get_threshold(long out[GC_NGENS]);
void gc_get_count(long out[GC_NGENS]);
/* gc.collect(gen): collect gen and every younger generation; returns the
 * number of unreachable objects found, or -1 if a collection is running. */
long gc_collect(int gen);
void gc_get_stats(gc_genstats_t out[GC_NGENS]);
/* The long-lived rule's state: objects promoted to the oldest generation
 * since the last full collection (pending), and that collection's
 * survivors (total).  A full collection waits for pending > total / 4. */
void gc_get_long_lived(size_t *pending, size_t *total);
/* Objects in a generation's list (len(gc.get_objects(gen))). */
size_t gc_gen_size(int gen);
/* gc.freeze(): move every tracked object into the permanent generation,
 * which no collection visits; gc.unfreeze() returns them to the oldest. */
void gc_freeze(void);
void gc_unfreeze(void);
size_t gc_get_freeze_count(void);

/* Called at the start (phase 0) and end (phase 1) of every collection,
 * with its generation and, at the end, the number collected. */
typedef void (*gc_callback_fn)(int phase, int gen, long collected,
                               void *arg);
void gc_set_callback(gc_callback_fn fn, void *arg);

/* Whole-heap consistency check (lists well linked, tracked flags, refcounts
 * >= references from tracked objects); 0 if sound, -1 and a message. */
int gc_check_heap(char *msg, size_t msglen);

#endif
