/*
 * pagediff.h -- why a copied heap page is not identical to the master's
 * (--identical-diff, diffs.csv): each 8-byte word that differs is given
 * to the object field that holds it in the master's heap.
 *
 * Fields: refcount, type (the type pointer), gc_head (the collector's two
 * links before a container), body (the rest of the object: a str's cached
 * hash, a dict's counters, instance values), items (a list's item array,
 * a dict's key table), allocator (no live object there in the master:
 * pool headers, free-list links, and objects the worker allocated in the
 * master's free blocks).
 */
#ifndef MS_PAGEDIFF_H
#define MS_PAGEDIFF_H

#include <stdint.h>
#include <sys/types.h>

#include "object.h"
#include "output.h"
#include "procstat.h"

typedef struct ms_pagediff ms_pagediff_t;

/* Map every block of the master's heap (rt_heap_walk: reads only) to its
 * object; 0 or -ENOMEM. */
int ms_pagediff_build(ms_pagediff_t **out, rt_heap_t *h,
                      const ps_snap_t *snap);
/*
 * Compare the pages set in copied and clear in identical (may be NULL:
 * every copied page) word by word between process pid and this process
 * (the master, whose heap was walked), and add one diffs.csv row per
 * (field, type) to w (row's run_id, policy, worker, pid).  0 or -errno
 * (no row added).
 */
int ms_pagediff_add(const ms_pagediff_t *d, ms_csv_t *w,
                    const ms_diff_row_t *row, pid_t pid,
                    const uint8_t *copied, const uint8_t *identical);
void ms_pagediff_free(ms_pagediff_t *d);

#endif
