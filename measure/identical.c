/*
 * identical.c -- which copied pages hold the reference's bytes again;
 * see identical.h.
 *
 * The reference is the process the worker was forked from: it writes no
 * heap page after fork() (master.c, refork.c), so its page at an address
 * holds exactly the bytes the worker's page held before the worker's
 * first write.  A copied page with those bytes now was written and
 * written back (an incref and its decref, a flag set and reset).
 *
 * Bytes are read through /proc/PID/mem, never process_vm_readv():
 * process_vm_readv() pins the pages it reads (FOLL_PIN), and since Linux
 * 5.19 a read-only pin of an anonymous page that is still shared after
 * fork() unshares it, i.e. copies it into the process being read.
 * Reading a mold would copy its pages (its workers' would then look
 * copied too); reading a worker would copy a page merged back by KSM.
 * /proc/PID/mem takes plain references (FOLL_GET), which leave a shared
 * page shared.  tests/check_identical.c checks that reading copies
 * nothing.
 *
 * Reading costs two copies of each copied page per sample (the worker's,
 * and the reference's in place or through its mem file too): about 90
 * MiB per worker on the default heap.  The master counts it in its
 * sampling budget (sampler.h).
 */
#include "identical.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t
page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

static int
open_mem(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/mem", (long)pid);
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? (errno == ENOENT ? -ESRCH : -errno) : fd;
}

/* Read n bytes at addr of the process whose mem file fd is into buf:
 * 0, -EFAULT if some page there is not mapped (EIO from the kernel),
 * -ESRCH if the process is gone (nothing to read: 0 bytes). */
static int
read_mem(int fd, uintptr_t addr, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(addr + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EIO ? -EFAULT : -errno;
        }
        if (r == 0)
            return -ESRCH;
        got += (size_t)r;
    }
    return 0;
}

/* Compare the run of n contiguous pages from addr (snapshot indices from
 * first); mine and theirs hold n pages. */
static int
compare_run(int fd, int ref_fd, uintptr_t addr, size_t first, size_t n,
            char *mine, char *theirs, size_t psize, uint8_t *identical,
            size_t *count)
{
    int r = read_mem(fd, addr, mine, n * psize);
    if (r == 0 && ref_fd >= 0)
        r = read_mem(ref_fd, addr, theirs, n * psize);
    if (r == -EFAULT && n > 1) {
        /* some page is gone: page by page, a gone one not identical */
        for (size_t i = 0; i < n; i++) {
            r = compare_run(fd, ref_fd, addr + i * psize, first + i, 1,
                            mine, theirs, psize, identical, count);
            if (r < 0 && r != -EFAULT)
                return r;
        }
        return 0;
    }
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const void *want = ref_fd >= 0 ? (const void *)(theirs + i * psize)
                                       : (const void *)(addr + i * psize);
        if (memcmp(mine + i * psize, want, psize) == 0) {
            (*count)++;
            if (identical != NULL)
                identical[(first + i) / 8] |= (uint8_t)(1u << ((first + i)
                                                               % 8));
        }
    }
    return 0;
}

int
ms_identical_count(const ps_snap_t *s, const uint8_t *copied, pid_t pid,
                   pid_t ref, uint8_t *identical, size_t *count)
{
    size_t psize = page_size(), total = ps_snap_total_pages(s);
    size_t nranges, base = 0, found = 0;
    const ps_range_t *ranges = ps_snap_ranges(s, &nranges);
    int r = 0, fd = -1, ref_fd = -1;
    char *mine = NULL;

    if (s == NULL || copied == NULL || count == NULL || pid <= 0 || ref < 0)
        return -EINVAL;
    if (identical != NULL)
        memset(identical, 0, (total + 7) / 8);
    if ((fd = open_mem(pid)) < 0)
        return fd;
    if (ref > 0 && (ref_fd = open_mem(ref)) < 0) {
        close(fd);
        return ref_fd;
    }
    mine = malloc(2 * MS_IDENTICAL_BATCH * psize);
    if (mine == NULL) {
        r = -ENOMEM;
        goto out;
    }
    char *theirs = mine + MS_IDENTICAL_BATCH * psize;
    /* Runs of contiguous copied pages, at most MS_IDENTICAL_BATCH long. */
    for (size_t i = 0; r == 0 && i < nranges; i++) {
        size_t np = (ranges[i].end - ranges[i].start) / psize;
        size_t j = 0;
        while (r == 0 && j < np) {
            size_t bit = base + j;
            if (!((copied[bit / 8] >> (bit % 8)) & 1)) {
                j++;
                continue;
            }
            size_t n = 1;
            while (j + n < np && n < MS_IDENTICAL_BATCH
                   && ((copied[(bit + n) / 8] >> ((bit + n) % 8)) & 1))
                n++;
            r = compare_run(fd, ref_fd, ranges[i].start + j * psize, bit, n,
                            mine, theirs, psize, identical, &found);
            j += n;
        }
        base += np;
    }
out:
    free(mine);
    close(fd);
    if (ref_fd >= 0)
        close(ref_fd);
    if (r < 0) {
        if (identical != NULL)
            memset(identical, 0, (total + 7) / 8);
        return r;
    }
    *count = found;
    return 0;
}

int
ms_read_page(pid_t pid, uintptr_t addr, void *buf, size_t size)
{
    int fd = open_mem(pid);
    if (fd < 0)
        return fd;
    int r = read_mem(fd, addr, buf, size);
    close(fd);
    return r;
}
