/*
 * census.h -- attribution of copied heap pages to object types
 * (--type-census): which types live on the pages a worker copied.
 */
#ifndef SRV_CENSUS_H
#define SRV_CENSUS_H

#include <stdio.h>
#include <sys/types.h>

#include "object.h"
#include "procstat.h"

typedef struct srv_census srv_census_t;

extern const char srv_types_header[];

/* Walk the heap (reads only: safe in the master after fork) and note, per
 * type, its objects and the snapshot pages holding them; 0 or -errno. */
int srv_census_build(srv_census_t **out, rt_heap_t *h, const ps_snap_t *snap);
/* One types.csv row per type for the worker whose pagemap pm is:
 * run_id,policy,worker,pid,type,objects,pages,copied_pages. */
int srv_census_write(const srv_census_t *c, FILE *f, const char *run_id,
                     const char *policy, unsigned worker, pid_t pid,
                     ps_pagemap_t *pm);
/* Objects the walk found (for tests). */
size_t srv_census_objects(const srv_census_t *c);
void srv_census_free(srv_census_t *c);

#endif
