/*
 * worker.h -- one forked worker: a libuv loop serving HTTP on the
 * inherited listening socket, requests handled against the shared heap,
 * counters in its stats slot, and the exit policy at the end.
 */
#ifndef SRV_WORKER_H
#define SRV_WORKER_H

#include <stdint.h>

#include "config.h"
#include "object.h"
#include "slots.h"
#include "workload.h"

typedef struct srv_worker_args {
    const cfg_t *cfg;
    rt_heap_t *heap;            /* the master's heap; NULL when lazy */
    wl_app_t *app;              /* built app; NULL when lazy */
    const wl_spec_t *spec;      /* to build the heap when lazy */
    srv_slot_t *slot;
    int listen_fd;
    unsigned index;             /* logical worker number */
    uint64_t seed;
    pid_t master;
    const struct ps_snap *snap; /* heap pages present at fork; NULL: none */
    int attribution;            /* SRV_ATTR_*: what the master resolved */
    srv_route_t *routes;        /* this slot's rows: workload routes, then
                                   SRV_ROUTE_EXTRA (slots.h) */
    const srv_routes_t *routes_all; /* every slot's (a mold's workers') */
    int ctl_fd;                 /* --refork-after: its end of the master's
                                   socketpair (refork.h); -1: none */
    unsigned generation;        /* 0: forked by the master; g: by mold g */
    int reparent;               /* forked by a mold's child: wait to be
                                   the master's child first */
    srv_slot_t *slots;          /* the whole stats region, for a worker
                                   that becomes a mold */
    unsigned nslots;
    uint8_t *released;          /* shared with the master: snapshot pages
                                   this worker gave back (one bit each) */
} srv_worker_args_t;

/* A worker's exit status when its finalize teardown failed (out of
 * memory): it reports no teardown figures. */
#define SRV_EXIT_TEARDOWN_FAILED 73

/* Run the worker until it is told to stop, then apply the exit policy
 * (finalize or skip) and _exit(); never returns. */
_Noreturn void srv_worker_main(const srv_worker_args_t *a);

/* Apply the configured pre-fork steps to the running heap: --warmup
 * first (rt_warmup(), what each step changed into *wu when wu is not NULL
 * and on stderr), then --freeze and --immortal: what the master does
 * before fork, a mold before its forks, and a lazy worker after its own
 * build.  0, or -ENOMEM (said on stderr) if the warm-up or making the
 * heap immortal ran out of memory (the heap is then half done: stop, do
 * not measure it). */
int srv_apply_prefork_policy(const cfg_t *cfg, rt_heap_t *h,
                             rt_warmup_t *wu);
/* A heap in the configured mode (--python, --gc-layout, --refcount), or
 * NULL. */
rt_heap_t *srv_heap_new(const cfg_t *cfg);
/* The build's collector mode (--prefork-gc). */
wl_gc_t srv_build_gc(const cfg_t *cfg);
/* Set thresholds as configured (gc off = threshold 0). */
void srv_apply_gc_thresholds(const cfg_t *cfg);

#endif
