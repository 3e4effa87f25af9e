/*
 * slots.h -- the stats region the master shares with its workers: one
 * slot per worker process, mmap(MAP_SHARED) before the first fork.  A
 * worker is the only writer of its slot; the master only reads it (and
 * resets a slot before handing it to a new worker).  The region is not
 * part of the runtime heap, so these writes never count as heap copies.
 */
#ifndef SRV_SLOTS_H
#define SRV_SLOTS_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

enum { SLOT_FREE, SLOT_STARTING, SLOT_SERVING, SLOT_STOPPING, SLOT_DONE };

typedef struct srv_slot {
    _Atomic int state;
    _Atomic int pid;
    _Atomic uint64_t requests;          /* served by this process */
    _Atomic uint64_t responses_4xx;     /* every answer sent: the handler's */
    _Atomic uint64_t responses_5xx;     /* and the HTTP layer's own */
    _Atomic uint64_t gc_collections[3];
    _Atomic uint64_t gc_collected;
    _Atomic uint64_t gc_time_us;
    _Atomic uint64_t faults_gc;         /* minor faults inside collections */
    _Atomic uint64_t faults_request;    /* inside the handler, GC excluded */
    _Atomic uint64_t faults_teardown;
    _Atomic uint64_t teardown_us;       /* exit policy: decision to _exit */
    _Atomic uint64_t busy_since_ns;     /* CLOCK_MONOTONIC; 0 = idle */
    _Atomic uint64_t heap_objects;      /* rt_heap_objects() after build */
    _Atomic uint64_t build_us;          /* lazy: the worker's heap build */
    /* Heap pages this worker copied, by cause (see worker.c): */
    _Atomic uint64_t copied_by_gc;      /* inside measured collections */
    _Atomic uint64_t copied_by_request; /* between measurements, no GC */
    _Atomic uint64_t copied_unattributed; /* between measurements that
                                           saw an unmeasured collection */
    _Atomic uint64_t copied_by_teardown;
    _Atomic uint64_t copied_measured;   /* their sum at the last measure */
    _Atomic uint64_t gc_measured;       /* collections bracketed */
    _Atomic uint64_t first_full_gc_request; /* the request during which
                                           its first full collection ran
                                           (1 = the first); 0: none yet */
    _Atomic uint64_t teardown_collections; /* finalize's collections */
    char pad[16];
} srv_slot_t;

typedef struct srv_slots {
    unsigned n;
    srv_slot_t *slot;
} srv_slots_t;

/* Map n zeroed slots shared with every future child; 0 or -errno. */
int srv_slots_map(srv_slots_t *s, unsigned n);
void srv_slots_unmap(srv_slots_t *s);
/* A free slot, reset and marked STARTING; -1 if none. */
int srv_slots_claim(srv_slots_t *s);
void srv_slots_release(srv_slots_t *s, int i);

#endif
