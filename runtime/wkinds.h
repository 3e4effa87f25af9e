/*
 * wkinds.h -- copies by kind of write (--write-kinds, a diagnostic mode):
 * the runtime notes, for each page of the heap a worker inherited, the
 * kind of the first write it makes there -- a refcount, the collector's
 * links or gc_refs, an object's contents, a new object placed in an
 * inherited free block, the allocator's own metadata.  measure/wset.c
 * pairs each copy it sees with its page's kind; a copy whose page the
 * runtime never noted is "other" (a write site without a mark; since large
 * blocks come from the runtime's own chunks, no libc data shares a heap
 * page).
 *
 * It costs nothing when off because it is not there: only a build with
 * RT_WRITE_KINDS notes anything (bin/cowlab-kinds, which `make` builds and
 * `cowlab --write-kinds` runs); in the default build RT_WK_NOTE is empty
 * and rt_wk_start() fails.  With it on, every noted write (every incref
 * and decref among them) pays a range lookup: slower, and meant to be.
 */
#ifndef COWLAB_WKINDS_H
#define COWLAB_WKINDS_H

#include <stddef.h>
#include <stdint.h>

/* The kinds, in kinds.csv's order; 0 is "not noted". */
enum {
    RT_WK_OTHER,            /* no runtime write noted on the page */
    RT_WK_REFCOUNT,         /* incref / decref of an existing object */
    RT_WK_GC,               /* gc_head links and gc_refs (collections,
                               track/untrack, the trashcan's chain) */
    RT_WK_PAYLOAD,          /* an object's contents: items, entries, a
                               cached hash, clearing at teardown */
    RT_WK_NEW,              /* a new object or array in an inherited block */
    RT_WK_ALLOC,            /* pool headers, free-list links, large-block
                               headers */
    RT_WK_NKINDS
};

#ifdef RT_WRITE_KINDS
/* The table while noting, else NULL; see rt_wk_start(). */
extern uint8_t *rt__wk_on;
void rt__wk_note(const void *p, int kind);
void rt__wk_span(const void *p, size_t len, int kind);
/* Note the kind of the write about to be made at p (or [p, p + len)). */
#define RT_WK_NOTE(p, kind) \
    ((void)(rt__wk_on ? rt__wk_note((const void *)(p), (kind)) : (void)0))
#define RT_WK_SPAN(p, len, kind) \
    ((void)(rt__wk_on ? rt__wk_span((const void *)(p), (len), (kind)) \
                      : (void)0))
#else
#define RT_WK_NOTE(p, kind) ((void)0)
#define RT_WK_SPAN(p, len, kind) ((void)0)
#endif

struct mem_range;

/* 1 in a build with RT_WRITE_KINDS, else 0. */
int rt_wk_built(void);
/* Start noting first writes to the pages of ranges (sorted, disjoint,
 * page aligned: a heap snapshot's), numbered through them in order.
 * 0, or -1 (not built with RT_WRITE_KINDS, bad ranges, out of memory). */
int rt_wk_start(const struct mem_range *ranges, size_t n);
/* table[i]: the kind of the first write to page i (0: none yet), and the
 * number of pages; NULL before rt_wk_start(). */
const uint8_t *rt_wk_table(size_t *npages);
/* Stop noting and free the table. */
void rt_wk_stop(void);
/* "other", "refcount", "gc", "payload", "new", "allocator". */
const char *rt_wk_name(int kind);

#endif
