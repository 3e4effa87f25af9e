/*
 * procstat.h -- what the master measures about its workers, read from /proc:
 * the memory totals of smaps_rollup, the fault counters of stat, and
 * pagemap snapshots that count the heap pages copy-on-write has copied.
 * The metric names follow DESIGN.md "Metrics" (heap_pages,
 * heap_copied_pages).  Nothing here allocates from the runtime heap: the
 * only allocator used is malloc, and only by ps_snap_take().
 * Functions return 0 or a negative errno (libuv style).
 */
#ifndef COWLAB_PROCSTAT_H
#define COWLAB_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* From /proc/PID/smaps_rollup, in kB; -1 when the kernel has no such line. */
typedef struct ps_smaps {
    long rss_kb;
    long pss_kb;
    long shared_clean_kb;
    long shared_dirty_kb;
    long private_clean_kb;
    long private_dirty_kb;
} ps_smaps_t;

/*
 * Parse the text of an smaps_rollup file (len bytes, need not end in NUL).
 * Unknown lines are skipped, so newer kernels' extra fields do no harm.
 * -EINVAL if there is no Rss line (every kernel with smaps_rollup has one),
 * if a known line is malformed ("Name:  <digits> kB") or repeated.
 * *out is written only on success.
 */
int ps_parse_smaps_rollup(const char *text, size_t len, ps_smaps_t *out);

/* Read /proc/PID/smaps_rollup; pid 0 means the calling process. */
int ps_read_smaps_rollup(pid_t pid, ps_smaps_t *out);

/* From /proc/PID/stat: cumulative for the process, children excluded. */
typedef struct ps_stat {
    long minflt;
    long majflt;
    long utime_ticks;           /* in sysconf(_SC_CLK_TCK) units */
    long stime_ticks;
    char state;                 /* 'R', 'S', 'D', 'Z', ... */
} ps_stat_t;

/*
 * Parse one /proc/PID/stat line.  The comm field may hold spaces and
 * parentheses, so the fields are read after the LAST ')'.  -EINVAL if the
 * line is not "pid (comm) state ..." with at least the stime field.
 * *out is written only on success.
 */
int ps_parse_stat(const char *text, size_t len, ps_stat_t *out);

/* Read /proc/PID/stat; pid 0 means the calling process. */
int ps_read_stat(pid_t pid, ps_stat_t *out);

/* A virtual address range [start, end), both page aligned. */
typedef struct ps_range {
    uintptr_t start;
    uintptr_t end;
} ps_range_t;

/*
 * A pagemap snapshot: a copy of the ranges and one bit per page of them,
 * set when the page was present (pagemap bit 63) at snapshot time.
 * Pages are numbered through the ranges in the order given, so page k of
 * range r comes after all pages of ranges 0..r-1.
 */
typedef struct ps_snap ps_snap_t;

/* An open /proc/PID/pagemap, reused between samples.  fd is -1 if closed. */
typedef struct ps_pagemap {
    int fd;
    pid_t pid;
} ps_pagemap_t;

/*
 * Snapshot the pages of ranges present in pid (0 = the calling process):
 * the master calls it just before fork().  The ranges should not overlap
 * (a page in two ranges is counted twice).  -EINVAL if a range is not page
 * aligned or has end < start; -ENOMEM; the errors of ps_pagemap_open()
 * and ps_count_copied_fd().  On success *out must go to ps_snap_free().
 */
int ps_snap_take(ps_snap_t **out, pid_t pid, const ps_range_t *ranges,
                 size_t nranges);

/* As ps_snap_take(), reading through an already open pagemap. */
int ps_snap_take_fd(ps_snap_t **out, ps_pagemap_t *pm,
                    const ps_range_t *ranges, size_t nranges);

/* Free a snapshot; NULL is allowed. */
void ps_snap_free(ps_snap_t *s);

/* heap_pages: pages present at snapshot time. */
size_t ps_snap_pages(const ps_snap_t *s);

/* All pages of the ranges, present or not: the bits of a copied bitmap. */
size_t ps_snap_total_pages(const ps_snap_t *s);

/* The ranges as given to ps_snap_take(), and how many there are. */
const ps_range_t *ps_snap_ranges(const ps_snap_t *s, size_t *nranges);

/*
 * Open /proc/PID/pagemap (pid 0 = the calling process) for repeated reads.
 * The file stays bound to the address space it was opened on: once that
 * process exits, reads give -ESRCH, even if the pid is reused.
 * -ENOENT if there is no such process, -EACCES/-EPERM without the right to
 * ptrace-read it (PTRACE_MODE_READ: root, or usually the same user).
 */
int ps_pagemap_open(ps_pagemap_t *pm, pid_t pid);

/* Close it; closing twice is harmless. */
void ps_pagemap_close(ps_pagemap_t *pm);

/*
 * heap_copied_pages: of the pages present at snapshot time, those that
 * pid's pagemap now shows present (bit 63) and exclusively mapped (bit 56),
 * i.e. copied by copy-on-write.  Pages first touched after the snapshot are
 * new, not copies, and are not counted; neither is anything outside the
 * ranges.  Exclusive means mapped by no other process, so the count is
 * exact while the master (which must not write the ranges after fork)
 * keeps its mapping.  -ESRCH if the process has exited.
 */
int ps_count_copied(const ps_snap_t *s, pid_t pid, size_t *copied);

/* As ps_count_copied(), through an open pagemap: for periodic sampling. */
int ps_count_copied_fd(const ps_snap_t *s, ps_pagemap_t *pm, size_t *copied);

/*
 * As ps_count_copied(), and also fill bits, one bit per page of the ranges
 * (ps_snap_total_pages() bits, (total + 7) / 8 bytes, page i in
 * bits[i / 8] & (1 << (i % 8))), set for each copied page.  Every byte is
 * written, also on error (then all zero).
 */
int ps_copied_bitmap(const ps_snap_t *s, pid_t pid, uint8_t *bits,
                     size_t *copied);

/* As ps_copied_bitmap(), through an open pagemap. */
int ps_copied_bitmap_fd(const ps_snap_t *s, ps_pagemap_t *pm, uint8_t *bits,
                        size_t *copied);

/* Of the snapshot pages inside [start, end) whose bit in seen is clear
 * (seen: a bitmap like ps_copied_bitmap_fd()'s, e.g. the pages copied
 * before), count those pm now shows copied, and set their bits in seen so
 * they are counted once.  For memory about to be unmapped: a worker's
 * teardown counts an arena's copies just before the allocator releases
 * it, then the rest once at the end. */
int ps_count_new_copies(const ps_snap_t *s, ps_pagemap_t *pm, uint8_t *seen,
                        uintptr_t start, uintptr_t end, size_t *out);
/*
 * Released pages: a snapshot page the process gave back after fork (an
 * arena or a large-block chunk unmapped) is neither shared nor copied,
 * and when a later mapping reuses its address, its new pages are no
 * copies either.  A process marks what it releases in a bitmap like
 * ps_copied_bitmap_fd()'s (ps_snap_mark: the snapshot pages in [start,
 * end) not marked yet; returns how many it marked), and the counters
 * leave those pages out: ps_count_copied_excl() counts the copied pages
 * not released, and the released ones into *nreleased (may be NULL).
 */
size_t ps_snap_mark(const ps_snap_t *s, uint8_t *bits, uintptr_t start,
                    uintptr_t end);
int ps_count_copied_excl(const ps_snap_t *s, ps_pagemap_t *pm,
                         const uint8_t *released, size_t *copied,
                         size_t *nreleased);
/* 1 if page index (in snapshot order) was present at snapshot time. */
int ps_snap_present(const ps_snap_t *s, size_t index);
/* The snapshot's bitmap itself: ps_snap_total_pages() bits, page i in
 * word i / 64, bit i % 64; NULL for a NULL snapshot. */
const uint64_t *ps_snap_bits(const ps_snap_t *s);

/* ---- raw entries: frame numbers, for KSM and the mold's check ---------- */

/* Pagemap bits (Documentation/admin-guide/mm/pagemap.rst): see procstat.c. */
#define PS_PM_PRESENT   ((uint64_t)1 << 63)
#define PS_PM_EXCLUSIVE ((uint64_t)1 << 56)
#define PS_PM_PFN_MASK  (((uint64_t)1 << 55) - 1)   /* 0 without root */

/* Called with a snapshot page's index, address and pm's current entry. */
typedef void (*ps_entry_fn)(void *arg, size_t index, uintptr_t vaddr,
                            uint64_t entry);
/* Call fn for every page present in the snapshot, in index order, with
 * the entry pm's process has for it now (read in batches, as the
 * counters read them).  -ESRCH if the process has exited. */
int ps_snap_each_entry(const ps_snap_t *s, ps_pagemap_t *pm, ps_entry_fn fn,
                       void *arg);
/* The address of snapshot page index (any page of the ranges). */
uintptr_t ps_snap_addr(const ps_snap_t *s, size_t index);

/* The raw entries of the n pages from vaddr (page aligned) into buf, as
 * many preads as it takes.  -ESRCH once the process has exited. */
int ps_pagemap_read(ps_pagemap_t *pm, uintptr_t vaddr, uint64_t *buf,
                    size_t n);

#endif /* COWLAB_PROCSTAT_H */
