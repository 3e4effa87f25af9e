/*
 * master.h -- the prefork master: build the heap, apply the policy, fork
 * and supervise workers, sample them into CSV (the files: output.h).
 */
#ifndef SRV_MASTER_H
#define SRV_MASTER_H

#include "config.h"
#include "workload.h"

/* Run until stopped (signal, --duration, --requests); returns the exit
 * status for main(): 0 on a clean stop, 1 on a runtime failure. */
int srv_master_run(const cfg_t *cfg, const wl_spec_t *spec);

struct ps_snap;
/* Snapshot which pages of every heap range (mem_ranges) are present, for
 * however many ranges there are.  0, or a negative errno (-ENOMEM). */
int srv_snapshot_heap(struct ps_snap **snap);

#endif
