/*
 * census.h -- attribution of copied heap pages to object types
 * (--type-census): which types live on the pages a worker copied.
 */
#ifndef MS_CENSUS_H
#define MS_CENSUS_H

#include "object.h"
#include "output.h"
#include "procstat.h"

typedef struct ms_census ms_census_t;

/* Walk the heap (reads only: safe in the master after fork) and note, per
 * type, its objects and the snapshot pages holding them; 0 or -errno. */
int ms_census_build(ms_census_t **out, rt_heap_t *h, const ps_snap_t *snap);
/* Add to w one types.csv row per type for the worker whose pagemap pm
 * is: row's run_id, policy, worker and pid, with the type, its objects,
 * its pages and how many of those the worker copied; with ident_pid (the
 * worker's pid; 0: not measured), how many of those copied hold the
 * master's bytes again (identical.h: this process is the reference).
 * 0 or -errno (no row added: out of memory, or the pagemap or the pages
 * could not be read). */
int ms_census_add(const ms_census_t *c, ms_csv_t *w,
                  const ms_type_row_t *row, ps_pagemap_t *pm,
                  pid_t ident_pid);
/* Objects the walk found (for tests). */
size_t ms_census_objects(const ms_census_t *c);
void ms_census_free(ms_census_t *c);

#endif
