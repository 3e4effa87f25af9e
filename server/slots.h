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

enum { SLOT_FREE, SLOT_STARTING, SLOT_SERVING, SLOT_STOPPING, SLOT_DONE,
       SLOT_MOLD };                 /* a mold: forks, serves nothing */

/* How a worker attributes its copies (runs.csv, samples.csv and
 * meta.json write the names of srv_attr_name()). */
enum { SRV_ATTR_NONE, SRV_ATTR_PAGEMAP, SRV_ATTR_WSET };

/* --write-kinds: copies by kind (runtime/wkinds.h's RT_WK_*) for each of
 * these causes. */
#define SRV_NKINDS 6
enum { SRV_KC_REQUEST, SRV_KC_GC, SRV_KC_TEARDOWN, SRV_NKCAUSES };
/* "none", "pagemap", "write-sets". */
const char *srv_attr_name(int attr);

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
    _Atomic int attribution;            /* SRV_ATTR_* in force here */
    _Atomic uint64_t written_pages;     /* by the sampled requests */
    _Atomic uint64_t written_requests;  /* requests sampled */
    _Atomic uint64_t faults_sampling;   /* the samples' own faults */
    _Atomic uint64_t wset_scans;        /* write-set scans done, skipped */
    _Atomic uint64_t wset_skipped;
    _Atomic uint64_t wset_check;        /* |pagemap - write sets| at exit */
    _Atomic int wset_checked;           /* 1: wset_check was measured */
    _Atomic uint64_t wset_busy_us;      /* time in scans and sampling */
    _Atomic uint64_t wset_released;     /* snapshot pages released */
    _Atomic uint64_t kind_copied[SRV_NKCAUSES][SRV_NKINDS];
    /* --refcount split: this process's table (rt_get_overhead()) */
    _Atomic uint64_t rc_table_entries;
    _Atomic uint64_t rc_table_bytes;
    char pad[8];
} srv_slot_t;

/*
 * Per route, per slot: what a worker's requests to each route did, in a
 * region of its own (routes are the workload's, then SRV_ROUTE_EXTRA
 * more: /healthz, /stats, /sleep, "(other)" for unknown paths and
 * "(server)" for copies made outside any handler, by the HTTP layer).
 */
enum { SRV_ROUTE_HEALTHZ, SRV_ROUTE_STATS, SRV_ROUTE_SLEEP, SRV_ROUTE_OTHER,
       SRV_ROUTE_SERVER, SRV_ROUTE_EXTRA };
/* The name of extra route i (SRV_ROUTE_*). */
const char *srv_route_extra_name(int i);

typedef struct srv_route {
    _Atomic uint64_t requests;
    _Atomic uint64_t copied;            /* by the handler, GC excluded */
    _Atomic uint64_t copied_gc;         /* by collections inside it */
    _Atomic uint64_t written;           /* pages, sampled requests */
    _Atomic uint64_t written_requests;  /* requests sampled */
} srv_route_t;

typedef struct srv_routes {
    unsigned nslots, nroutes;           /* nroutes counts the extra ones */
    srv_route_t *row;
} srv_routes_t;

/* Map nroutes rows for each of nslots slots, zeroed; 0 or -errno. */
int srv_routes_map(srv_routes_t *r, unsigned nslots, unsigned nroutes);
void srv_routes_unmap(srv_routes_t *r);
/* The rows of slot i (nroutes of them). */
srv_route_t *srv_routes_of(const srv_routes_t *r, int i);

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
