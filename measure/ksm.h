/*
 * ksm.h -- kernel samepage merging (KSM), as the master drives and
 * measures it: the knobs under /sys/kernel/mm/ksm (saved, set for a run,
 * restored), a process's /proc/PID/ksm_stat, the global counters, ksmd's
 * CPU time, and which heap pages of a process are KSM pages
 * (/proc/kpageflags).  Functions return 0 or a negative errno.
 */
#ifndef MS_KSM_H
#define MS_KSM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procstat.h"

/* The sysfs folder of the knobs and counters. */
#define MS_KSM_SYSFS "/sys/kernel/mm/ksm"

/* /proc/PID/ksm_stat (Linux 6.1+); -1 in a field the kernel lacks. */
typedef struct ms_ksm_stat {
    long rmap_items;            /* ksm_rmap_items: pages KSM tracks */
    long zero_pages;            /* ksm_zero_pages (use_zero_pages) */
    long merging_pages;         /* ksm_merging_pages: pages merged */
    long process_profit;        /* ksm_process_profit, bytes */
    int merge_any;              /* ksm_merge_any: PR_SET_MEMORY_MERGE */
    int mergeable;              /* ksm_mergeable */
} ms_ksm_stat_t;

/* Parse the text of a ksm_stat file ("name value" or "name: yes|no"
 * lines; unknown lines are skipped).  -EINVAL without a
 * ksm_merging_pages line or with a malformed known one. */
int ms_ksm_parse_stat(const char *text, size_t len, ms_ksm_stat_t *out);
/* Read /proc/PID/ksm_stat (pid 0: this process). */
int ms_ksm_read_stat(pid_t pid, ms_ksm_stat_t *out);

/* The counters of the sysfs folder; -1 for a file that is missing. */
typedef struct ms_ksm_sys {
    long run;                   /* 0 stop, 1 run, 2 unmerge all */
    long pages_to_scan;         /* per wake-up of ksmd */
    long sleep_millisecs;       /* between wake-ups */
    long pages_shared;          /* KSM pages in use */
    long pages_sharing;         /* mappings of them beyond the first:
                                   pages saved */
    long pages_unshared;        /* candidates with no twin yet */
    long pages_volatile;        /* changing too fast to be candidates */
    long full_scans;            /* passes over every mergeable area */
} ms_ksm_sys_t;

/* Read the counters of dir (NULL: MS_KSM_SYSFS).  -ENOENT if dir has no
 * "run" file: a kernel without KSM. */
int ms_ksm_read_sys(const char *dir, ms_ksm_sys_t *out);

/*
 * A run's hold on the knobs: ms_ksm_begin() checks that KSM exists and
 * that we may set it, takes an exclusive lock on the "run" file (two runs
 * that set KSM at once would restore each other's values), saves run,
 * pages_to_scan and sleep_millisecs, and sets them for the run;
 * ms_ksm_end() restores the saved values and drops the lock.
 */
typedef struct ms_ksm_ctl {
    char dir[256];
    int lock_fd;                /* -1: not held */
    long saved_run, saved_pages, saved_sleep;
    int saved;                  /* values to restore */
} ms_ksm_ctl_t;

/*
 * dir NULL: MS_KSM_SYSFS.  Errors, each with a one-line message in err:
 * -ENOENT (no KSM in this kernel), -EACCES (not root: the knobs are
 * root's), -EBUSY (another run holds them), or what writing a knob gave.
 * On error nothing is left changed.
 */
int ms_ksm_begin(ms_ksm_ctl_t *k, const char *dir, long pages_to_scan,
                 long sleep_ms, char *err, size_t errlen);
/* Restore and release; harmless when nothing is held.  0 or the first
 * -errno of the writes. */
int ms_ksm_end(ms_ksm_ctl_t *k);

/*
 * PR_SET_MEMORY_MERGE (Linux 6.4+): every present and future anonymous
 * area of this process is mergeable, and its children inherit that.
 * -EINVAL on an older kernel.
 */
int ms_ksm_merge_process(void);
/* 0 if this kernel knows PR_SET_MEMORY_MERGE (asked without changing
 * anything), -EINVAL if not. */
int ms_ksm_merge_supported(void);

/* The pid of the ksmd kernel thread, or -ENOENT. */
pid_t ms_ksmd_pid(void);
/* ksmd's CPU time so far (utime + stime), in seconds. */
int ms_ksmd_cpu_s(pid_t ksmd, double *seconds);

/*
 * heap_ksm_pages: of the snapshot's pages that pm's process has present,
 * those that are KSM pages (/proc/kpageflags bit KPF_KSM), whether the
 * process had copied them before or not.  kpageflags is the fd of an open
 * /proc/kpageflags; both files need root (without CAP_SYS_ADMIN pagemap
 * hides the frame numbers: -EPERM).
 */
int ms_ksm_count_pages(const ps_snap_t *s, ps_pagemap_t *pm, int kpageflags,
                       size_t *ksm_pages);
/* Open /proc/kpageflags; the fd or -errno. */
int ms_ksm_open_kpageflags(void);

#endif
