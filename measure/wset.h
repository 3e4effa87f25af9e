/*
 * wset.h -- exact write sets of a forked worker's inherited heap: which
 * heap pages it copied, credited to the cause that copied them (request,
 * collection, teardown), and how many pages a sampled request writes.
 * Linux 6.7+: userfaultfd write-protection in asynchronous mode and the
 * PAGEMAP_SCAN ioctl; ms_wset_probe() says whether this kernel and this
 * process may use them (the server falls back to pagemap bracketing when
 * not).  The mechanism and its cost model: wset.c's opening comment.
 * Functions return 0 (or a count) or a negative errno.
 */
#ifndef MS_WSET_H
#define MS_WSET_H

#include <stddef.h>
#include <stdint.h>

#include "procstat.h"

/* What a copy is credited to. */
typedef enum ms_cause {
    MS_CAUSE_REQUEST,           /* serving requests: handler and HTTP layer */
    MS_CAUSE_GC,                /* inside a collection */
    MS_CAUSE_TEARDOWN,          /* the finalize exit policy */
    MS_CAUSE_BEFORE,            /* before tracking began (expected 0) */
    MS_NCAUSES
} ms_cause_t;

/* Kinds of the first write to a page (--write-kinds): the runtime's table
 * (wkinds.h) holds 1 + these minus one; 0 in the table is MS_KIND_OTHER. */
#define MS_NKINDS 6

/*
 * Can this process use write sets?  Creates a userfaultfd (user-mode
 * faults only, which vm.unprivileged_userfaultfd = 0 allows), asks for
 * UFFD_FEATURE_WP_ASYNC, protects a scratch page, writes it and asks
 * PAGEMAP_SCAN for it.  0, or -errno with the reason in why (e.g. "kernel
 * 6.1: no UFFD_FEATURE_WP_ASYNC (Linux 6.7+)").  The environment variable
 * COWLAB_NO_WRITE_SETS=1 makes it answer -ENOSYS, as an old kernel would
 * (tests of the fallback).
 */
int ms_wset_probe(char *why, size_t whylen);

typedef struct ms_wset ms_wset_t;

/*
 * Start tracking the snapshot's pages in the calling process: the first
 * thing a worker does after fork().  Registers every range for
 * write-protection, protects it, and reads the pagemap once: pages
 * already copied are credited to MS_CAUSE_BEFORE and left unprotected.
 * All of its memory is mmap()ed, never malloc()ed, so that tracking writes
 * no heap page itself.  The snapshot must outlive *out.
 */
int ms_wset_start(ms_wset_t **out, const ps_snap_t *snap, char *why,
                  size_t whylen);
/* Stop (the protection goes with the userfaultfd) and free; NULL is ok. */
void ms_wset_free(ms_wset_t *w);

/*
 * Close an interval: the snapshot pages first written since the last
 * close are copies, credited to cause.  A copy takes a page fault, so
 * when the minor-fault count is still the one of the last close there is
 * nothing to scan and none is done: minflt is the caller's fresh reading
 * (clk_minflt()), or -1 to read it here.  Returns the pages newly copied.
 */
long ms_wset_close(ms_wset_t *w, ms_cause_t cause, long minflt);
/* The same for [start, end) only: memory about to be unmapped (the
 * allocator's release hook), whose copies would otherwise vanish
 * unseen.  Pages outside the snapshot are ignored. */
long ms_wset_close_range(ms_wset_t *w, ms_cause_t cause, uintptr_t start,
                         uintptr_t end);

/*
 * The allocator releases [start, end) (its release hook, before the
 * munmap): close it as ms_wset_close_range does, then its snapshot pages
 * are released: neither shared nor copied from now on (their copies leave
 * ms_wset_copied_now, not the counts by cause), and nothing written at
 * their addresses later is a copy.
 */
long ms_wset_release_range(ms_wset_t *w, ms_cause_t cause, uintptr_t start,
                           uintptr_t end);

/*
 * A sampled interval: every page written in it, copied before or not.
 * begin closes the pending interval (to cause) and protects every
 * snapshot page again; end closes the sampled one (its copies to cause),
 * returns the snapshot pages written in it, and lifts the protection from
 * the copied pages it did not write, so they never fault again.
 * Between the two, epoch (ms_wset_epoch) is odd.
 */
int ms_wset_sample_begin(ms_wset_t *w, ms_cause_t cause);
long ms_wset_sample_end(ms_wset_t *w, ms_cause_t cause);

/* Pages copied so far, by cause, and their sum (released ones included:
 * each was a copy when it was made). */
uint64_t ms_wset_copied(const ms_wset_t *w, ms_cause_t cause);
uint64_t ms_wset_copied_total(const ms_wset_t *w);
/* The copies now: copied pages not released since (heap_copied_pages),
 * and the snapshot pages released (heap_released_pages). */
uint64_t ms_wset_copied_now(const ms_wset_t *w);
uint64_t ms_wset_released(const ms_wset_t *w);
/* Odd inside a sampled interval; changes at each begin and end. */
uint64_t ms_wset_epoch(const ms_wset_t *w);
/* Scans done and scans skipped (no fault since the last close). */
void ms_wset_scans(const ms_wset_t *w, uint64_t *done, uint64_t *skipped);
/* Time spent in scans, in sampling's protection and its lifting: what
 * tracking costs the worker beyond its faults (CLOCK_MONOTONIC ns). */
uint64_t ms_wset_busy_ns(const ms_wset_t *w);

/*
 * --write-kinds: table[i] is the kind (1..MS_NKINDS-1, 0 = none noted) of
 * the first write to snapshot page i, kept by the runtime; from now on
 * every new copy is also counted by (cause, kind).  NULL stops it.
 */
void ms_wset_set_kinds(ms_wset_t *w, const uint8_t *table);
uint64_t ms_wset_kind_copied(const ms_wset_t *w, ms_cause_t cause, int kind);

/*
 * The master's side: heap_copied_pages of a worker that tracks with write
 * sets, through its open pagemap: the snapshot pages PAGEMAP_SCAN reports
 * written in write-protected memory.  Exact while the worker keeps its
 * invariant (every snapshot page protected until copied, except those
 * copied before tracking, which the caller adds) and outside sampled
 * intervals (check ms_wset_epoch around the call).  -ENOTTY without
 * PAGEMAP_SCAN.
 */
int ms_wset_count_written(const ps_snap_t *snap, ps_pagemap_t *pm,
                          size_t *written);

#endif
