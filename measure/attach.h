/*
 * attach.h -- what `cowlab attach` reads about a prefork process tree it
 * did not build (gunicorn, uWSGI, any master/worker tree): the master's
 * workers (its children), the master's private anonymous memory (the
 * "heap", from /proc/PID/maps) and the page frames behind it
 * (/proc/PID/pagemap), which tell a worker's pages still shared with the
 * master from those it copied, those the master itself wrote, and new
 * ones.  Definitions: DESIGN.md "Attached to a real server"; how a page
 * is classified: att_classify() below.
 *
 * Read-only: everything here opens /proc files for reading.  Nothing
 * writes to, signals, traces or stops the target.
 * Functions return 0 or a negative errno (libuv style).
 */
#ifndef COWLAB_ATTACH_H
#define COWLAB_ATTACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procstat.h"

/* ---- the heap: the master's private anonymous ranges ------------------- */

/* Mappings left out for their size (max_bytes below). */
typedef struct att_skipped {
    size_t n;
    uint64_t bytes;
} att_skipped_t;

/*
 * The ranges of a /proc/PID/maps text (len bytes) that are readable,
 * private and anonymous: no file (inode 0, no path), "[heap]", or a named
 * anonymous mapping "[anon:...]".  The stack, [vdso], [vvar] and other
 * special mappings, file mappings, shared mappings and PROT_NONE
 * reservations are left out, and so is a mapping larger than max_bytes
 * (0: no limit): address space reserved rather than used (a sanitizer's
 * shadow, a runtime's arena reservation), whose every page would
 * otherwise be read; they are counted in *skipped (may be NULL).  *out is
 * malloc()ed (free() it; NULL when *n is 0).  -EINVAL if a line is not
 * "start-end perms offset dev inode [path]" with hex addresses,
 * start < end, page aligned; -ENOMEM.
 */
int att_parse_maps(const char *text, size_t len, uint64_t max_bytes,
                   ps_range_t **out, size_t *n, att_skipped_t *skipped);

/* The same from /proc/PID/maps.  -ENOENT/-ESRCH: no such process. */
int att_read_maps(pid_t pid, uint64_t max_bytes, ps_range_t **out,
                  size_t *n, att_skipped_t *skipped);

/*
 * Keep only the parts of r[0..n) inside one of keep[0..nkeep) (--range):
 * r is rewritten in place, sorted, and its new length returned in *n.
 * -ENOMEM.  keep need not be sorted; overlapping keeps count once.
 */
int att_clip_ranges(ps_range_t **r, size_t *n, const ps_range_t *keep,
                    size_t nkeep);

/* "start-end" in hex (with or without 0x), page aligned, start < end. */
int att_parse_range(const char *s, ps_range_t *out);

/* ---- the workers: the master's children -------------------------------- */

/* From a /proc/PID/stat line: the parent's pid (field 4) and the start
 * time in clock ticks after boot (field 22).  -EINVAL if malformed. */
int att_parse_stat_ppid(const char *text, size_t len, pid_t *ppid,
                        unsigned long long *starttime);

/* The pids of a /proc/PID/task/TID/children text ("12 34 "), appended
 * to out[*n..cap); -EINVAL on anything but digits and blanks, -ENOSPC
 * when they do not fit (*n then counts those that did). */
int att_parse_children(const char *text, size_t len, pid_t *out, size_t cap,
                       size_t *n);

typedef enum att_children_how {
    ATT_CHILDREN_FILE = 1,      /* /proc/PID/task/TID/children */
    ATT_CHILDREN_SCAN = 2,      /* every /proc/N/stat's parent pid */
} att_children_how_t;

/*
 * The children of pid, at most cap of them into out, *n how many; how
 * says where they came from: the kernel's children files when it has
 * them (CONFIG_PROC_CHILDREN), else a scan of /proc for processes whose
 * parent is pid.  force_scan: scan even when the files exist.  A child
 * forked by any thread of pid counts.  -ESRCH if pid is gone, -ENOSPC
 * (out full: *n == cap).
 */
int att_children(pid_t pid, pid_t *out, size_t cap, size_t *n,
                 int force_scan, att_children_how_t *how);

/* Start time (clock ticks after boot) and parent of pid: a pid reused by
 * another process has another start time.  -ENOENT/-ESRCH if gone. */
int att_proc_start(pid_t pid, pid_t *ppid, unsigned long long *starttime);

/* ---- page frames ------------------------------------------------------- */

/*
 * The pagemap entries of the master's ranges at one moment: one 64-bit
 * entry per page (bit 63 present, bit 56 exclusive, bits 0-54 the page
 * frame number when the reader may see it), in range order as in
 * ps_snap_t.  Shared by reference: a worker keeps the frames it is
 * compared with (its "base") while the master's are read again.
 */
typedef struct att_frames att_frames_t;

/* Room for the pages of r[0..n) (copied); entries all zero.  -EINVAL if
 * a range is not page aligned or has end < start; -ENOMEM. */
int att_frames_new(att_frames_t **out, const ps_range_t *r, size_t n);
/* A new object with the same ranges (entries zero). */
int att_frames_like(att_frames_t **out, const att_frames_t *f);
att_frames_t *att_frames_ref(att_frames_t *f);
/* Drop a reference; the last one frees it.  NULL is allowed. */
void att_frames_unref(att_frames_t *f);
/* 1 when nobody else holds a reference (it may be read into again). */
int att_frames_unique(const att_frames_t *f);

/* Read every entry of the ranges through pm.  -ESRCH if the process has
 * exited (its address space is gone). */
int att_frames_read(att_frames_t *f, ps_pagemap_t *pm);

size_t att_frames_pages(const att_frames_t *f);       /* all, present or not */
size_t att_frames_present(const att_frames_t *f);     /* present ones */
const ps_range_t *att_frames_ranges(const att_frames_t *f, size_t *n);
/* 1 if some present entry has a nonzero frame number: the reader may see
 * page frames (CAP_SYS_ADMIN); 0 if every present one reads 0 (hidden),
 * -1 if no page is present (cannot tell). */
int att_frames_have_pfn(const att_frames_t *f);
/* The entries, one per page (for tests and the classifier). */
const uint64_t *att_frames_entries(const att_frames_t *f);

/* ---- classification ---------------------------------------------------- */

typedef struct att_counts {
    uint64_t heap_pages;        /* present in the base */
    uint64_t shared;            /* on the master's current frame */
    uint64_t copied;            /* the worker's own copy */
    uint64_t by_master;         /* the master's frame moved since the base */
    uint64_t new_pages;         /* the worker has it, the base did not */
    uint64_t absent;            /* in the base, not present in the worker */
} att_counts_t;

/* How pages are told apart: page frames (exact) or, when they are
 * hidden, the exclusive bit (an upper bound on copies). */
typedef enum att_method {
    ATT_PFN = 1,
    ATT_EXCLUSIVE = 2,
} att_method_t;

/*
 * Classify n pages and add them to *acc, from three pagemap entries per
 * page: base (the master's at the worker's reference moment), now (the
 * master's at this round) and w (the worker's at this round).
 *
 *   base not present:  w present -> new_pages; else nothing.
 *   base present:      heap_pages, and then exactly one of
 *     w not present                          -> absent
 *   ATT_PFN (frames compared, bits 63 and 0-54):
 *     w's frame == now's frame               -> shared
 *     now's frame != base's frame            -> by_master (the master
 *                                               wrote it, or unmapped it)
 *     otherwise                              -> copied
 *   ATT_EXCLUSIVE (frames hidden):
 *     w exclusive (bit 56)                   -> copied: an upper bound,
 *        since a page the master wrote is left to a single worker's
 *        mapping too; shared and by_master are not counted.
 *     otherwise                              -> (counted nowhere else)
 *
 * So with ATT_PFN heap_pages = shared + copied + by_master + absent.
 */
void att_classify(const uint64_t *base, const uint64_t *now,
                  const uint64_t *w, size_t n, att_method_t method,
                  att_counts_t *acc);

/*
 * Count one worker: read its pagemap through pm over the ranges of base
 * (now has the same ranges) in batches, classify every page (zeroes *out
 * first).  -ESRCH if the worker has exited, -EINVAL if base and now do
 * not have the same number of pages.
 */
int att_count(const att_frames_t *base, const att_frames_t *now,
              ps_pagemap_t *pm, att_method_t method, att_counts_t *out);

#endif /* COWLAB_ATTACH_H */
