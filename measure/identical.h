/*
 * identical.h -- heap_identical_pages: of the heap pages a worker copied,
 * those whose bytes are again those of the process it was forked from
 * (the master, or a refork mold), which keeps its pre-fork heap unwritten
 * and so is the reference.  Such a page holds nothing the worker needs
 * privately: a refcount that went up and back down, say.  KSM could merge
 * it back; the page census says which objects sit on the others, and
 * ms_pagediff (pagediff.h) which of their fields differ.
 */
#ifndef MS_IDENTICAL_H
#define MS_IDENTICAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procstat.h"

/*
 * Of the pages set in copied (a bitmap over s's pages, as
 * ps_copied_bitmap_fd() fills it), count those whose bytes in process pid
 * equal the bytes at the same address in process ref (0: this process,
 * read in place).  Bytes are read from /proc/PID/mem, runs of up to
 * MS_IDENTICAL_BATCH contiguous pages at a time (PTRACE_MODE_ATTACH:
 * root, or the parent of a process that is not set non-dumpable); the
 * reading copies nothing (identical.c says why not process_vm_readv()).
 * A page that cannot be read in pid or ref (unmapped since) is not
 * identical.  identical (may be NULL) gets a bitmap of the identical
 * pages (every byte written).  0, -ESRCH if either process has exited,
 * -EACCES/-EPERM, -ENOMEM.
 */
#define MS_IDENTICAL_BATCH 64
int ms_identical_count(const ps_snap_t *s, const uint8_t *copied, pid_t pid,
                       pid_t ref, uint8_t *identical, size_t *count);

/* The size bytes at addr of pid into buf, through /proc/PID/mem; 0,
 * -EFAULT where nothing is mapped, or -errno. */
int ms_read_page(pid_t pid, uintptr_t addr, void *buf, size_t size);

#endif
