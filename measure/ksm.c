/*
 * ksm.c -- kernel samepage merging, driven and measured by the master;
 * API and the meaning of each figure: ksm.h.
 *
 * How KSM meets the copy counters.  With PR_SET_MEMORY_MERGE set in the
 * master before fork(), every anonymous area of the master and of its
 * workers is mergeable.  ksmd walks them pages_to_scan pages per
 * sleep_millisecs and replaces each page whose bytes equal those of a KSM
 * page (or of another candidate that stayed unchanged for a whole pass)
 * by a mapping of that one write-protected KSM page.  A worker's private
 * copy of a heap page whose bytes went back to the master's is so merged
 * with the master's page: the worker maps a page it shares again, pagemap
 * bit 56 (exclusive) clears, and heap_copied_pages no longer counts it.
 * The next write to it copies it again (a copy-on-write fault, counted
 * again).  heap_ksm_pages counts the snapshot pages a worker maps as KSM
 * pages (kpageflags bit KPF_KSM), copied before or not.
 */
#include "ksm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>


#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67          /* Linux 6.4, <linux/prctl.h> */
#endif
#ifndef PR_GET_MEMORY_MERGE
#define PR_GET_MEMORY_MERGE 68
#endif
#define KPF_KSM_BIT     21              /* <linux/kernel-page-flags.h> */

static void
say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- ksm_stat ------------------------------------------------------------ */

int
ms_ksm_parse_stat(const char *text, size_t len, ms_ksm_stat_t *out)
{
    ms_ksm_stat_t st = { -1, -1, -1, -1, -1, -1 };
    static const struct {
        const char *name;
        size_t off;
    } nums[] = {
        { "ksm_rmap_items", offsetof(ms_ksm_stat_t, rmap_items) },
        { "ksm_zero_pages", offsetof(ms_ksm_stat_t, zero_pages) },
        { "ksm_merging_pages", offsetof(ms_ksm_stat_t, merging_pages) },
        { "ksm_process_profit", offsetof(ms_ksm_stat_t, process_profit) },
    };
    const char *p = text, *end = text + len;

    if (text == NULL || out == NULL)
        return -EINVAL;
    /* One line per turn: "name value" (a number: process_profit may be
     * negative) or "name: yes|no". */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *sp = p;
        while (sp < eol && *sp != ' ' && *sp != ':')
            sp++;
        size_t klen = (size_t)(sp - p);
        const char *v = sp;
        if (v < eol && *v == ':')
            v++;
        while (v < eol && *v == ' ')
            v++;
        size_t vlen = (size_t)(eol - v);
        int known = 0;
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            if (strlen(nums[i].name) != klen
                || memcmp(nums[i].name, p, klen) != 0)
                continue;
            long *f = (long *)(void *)((char *)&st + nums[i].off);
            char num[32];
            char *e;
            if (*f != -1 || vlen == 0 || vlen >= sizeof num)
                return -EINVAL;
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            errno = 0;
            long x = strtol(num, &e, 10);
            if (errno != 0 || *e != '\0'
                || (!isdigit((unsigned char)num[0]) && num[0] != '-'))
                return -EINVAL;
            *f = x;
            known = 1;
        }
        if (!known) {
            int *flag = NULL;
            if (klen == 13 && memcmp(p, "ksm_merge_any", 13) == 0)
                flag = &st.merge_any;
            else if (klen == 13 && memcmp(p, "ksm_mergeable", 13) == 0)
                flag = &st.mergeable;
            if (flag != NULL) {
                if (vlen == 3 && memcmp(v, "yes", 3) == 0)
                    *flag = 1;
                else if (vlen == 2 && memcmp(v, "no", 2) == 0)
                    *flag = 0;
                else
                    return -EINVAL;
            }
        }
        p = eol + (eol < end);
    }
    if (st.merging_pages < 0)
        return -EINVAL;
    *out = st;
    return 0;
}

/* Read a small file whole into buf (NUL-terminated); its length or
 * -errno. */
static long
read_small(const char *path, char *buf, size_t cap)
{
    int fd;
    size_t got = 0;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return (long)got;
}

int
ms_ksm_read_stat(pid_t pid, ms_ksm_stat_t *out)
{
    char path[64], buf[1024];
    if (pid == 0)
        snprintf(path, sizeof path, "/proc/self/ksm_stat");
    else
        snprintf(path, sizeof path, "/proc/%ld/ksm_stat", (long)pid);
    long n = read_small(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return -ESRCH;
    return ms_ksm_parse_stat(buf, (size_t)n, out);
}

/* ---- sysfs ----------------------------------------------------------------- */

static int
read_knob(const char *dir, const char *name, long *v)
{
    char path[512], buf[64], *e;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    long n = read_small(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    errno = 0;
    *v = strtol(buf, &e, 10);
    if (errno != 0 || e == buf || (*e != '\n' && *e != '\0'))
        return -EINVAL;
    return 0;
}

static int
write_knob(const char *dir, const char *name, long v)
{
    char path[512], buf[32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd;
    do
        fd = open(path, O_WRONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    int n = snprintf(buf, sizeof buf, "%ld\n", v);
    ssize_t w;
    do
        w = write(fd, buf, (size_t)n);
    while (w < 0 && errno == EINTR);
    int e = w < 0 ? errno : 0;
    close(fd);
    if (w >= 0 && w != n)
        return -EIO;
    return -e;
}

int
ms_ksm_read_sys(const char *dir, ms_ksm_sys_t *out)
{
    static const struct {
        const char *name;
        size_t off;
    } knobs[] = {
        { "run", offsetof(ms_ksm_sys_t, run) },
        { "pages_to_scan", offsetof(ms_ksm_sys_t, pages_to_scan) },
        { "sleep_millisecs", offsetof(ms_ksm_sys_t, sleep_millisecs) },
        { "pages_shared", offsetof(ms_ksm_sys_t, pages_shared) },
        { "pages_sharing", offsetof(ms_ksm_sys_t, pages_sharing) },
        { "pages_unshared", offsetof(ms_ksm_sys_t, pages_unshared) },
        { "pages_volatile", offsetof(ms_ksm_sys_t, pages_volatile) },
        { "full_scans", offsetof(ms_ksm_sys_t, full_scans) },
    };
    if (dir == NULL)
        dir = MS_KSM_SYSFS;
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        long *f = (long *)(void *)((char *)out + knobs[i].off);
        int r = read_knob(dir, knobs[i].name, f);
        if (r < 0) {
            if (i == 0)
                return r == -ENOENT || r == -ENOTDIR ? -ENOENT : r;
            *f = -1;
        }
    }
    return 0;
}

int
ms_ksm_begin(ms_ksm_ctl_t *k, const char *dir, long pages_to_scan,
             long sleep_ms, char *err, size_t errlen)
{
    char path[512];
    int r;
    memset(k, 0, sizeof *k);
    k->lock_fd = -1;
    if (dir == NULL)
        dir = MS_KSM_SYSFS;
    snprintf(k->dir, sizeof k->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/run", dir);
    if (access(path, F_OK) < 0 && errno != EACCES) {
        say(err, errlen, "--ksm: this kernel has no KSM (%s is missing: "
            "CONFIG_KSM)", path);
        return -ENOENT;
    }
    if (access(path, W_OK) < 0) {
        say(err, errlen, "--ksm: %s is not writable: setting ksmd running "
            "needs root", path);
        return -EACCES;
    }
    k->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (k->lock_fd < 0) {
        r = -errno;
        say(err, errlen, "--ksm: %s: %s", path, strerror(-r));
        return r;
    }
    if (flock(k->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        say(err, errlen, "--ksm: another cowlab run holds the KSM settings "
            "(%s is locked): one --ksm run at a time", path);
        close(k->lock_fd);
        k->lock_fd = -1;
        return r;
    }
    if ((r = read_knob(dir, "run", &k->saved_run)) < 0
        || (r = read_knob(dir, "pages_to_scan", &k->saved_pages)) < 0
        || (r = read_knob(dir, "sleep_millisecs", &k->saved_sleep)) < 0) {
        say(err, errlen, "--ksm: cannot read the settings in %s: %s", dir,
            strerror(-r));
        goto fail;
    }
    k->saved = 1;
    if ((r = write_knob(dir, "pages_to_scan", pages_to_scan)) < 0
        || (r = write_knob(dir, "sleep_millisecs", sleep_ms)) < 0
        || (r = write_knob(dir, "run", 1)) < 0) {
        say(err, errlen, "--ksm: cannot set ksmd running in %s: %s%s", dir,
            strerror(-r), r == -EACCES || r == -EPERM ? " (needs root)"
                                                      : "");
        ms_ksm_end(k);
        return r;
    }
    return 0;

fail:
    close(k->lock_fd);
    k->lock_fd = -1;
    return r;
}

int
ms_ksm_end(ms_ksm_ctl_t *k)
{
    int r = 0, w;
    if (k->saved) {
        /* run last: ksmd stops (or keeps running) with the old pace */
        if ((w = write_knob(k->dir, "pages_to_scan", k->saved_pages)) < 0)
            r = w;
        if ((w = write_knob(k->dir, "sleep_millisecs", k->saved_sleep)) < 0
            && r == 0)
            r = w;
        if ((w = write_knob(k->dir, "run", k->saved_run)) < 0 && r == 0)
            r = w;
        k->saved = 0;
    }
    if (k->lock_fd >= 0) {
        close(k->lock_fd);              /* drops the flock */
        k->lock_fd = -1;
    }
    return r;
}

int
ms_ksm_merge_process(void)
{
    if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) < 0)
        return -errno;
    return 0;
}

int
ms_ksm_merge_supported(void)
{
    return prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) < 0 ? -errno : 0;
}

/* ---- ksmd -------------------------------------------------------------------- */

pid_t
ms_ksmd_pid(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -ENOENT;
    if (d == NULL)
        return -errno;
    while (found < 0 && (e = readdir(d)) != NULL) {
        char path[300], comm[64];
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        if (read_small(path, comm, sizeof comm) <= 0)
            continue;
        if (strcmp(comm, "ksmd\n") != 0)
            continue;
        /* a kernel thread: a child of kthreadd (pid 2) */
        char line[1024], state;
        int ppid = 0;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        const char *rp = read_small(path, line, sizeof line) > 0
                         ? strrchr(line, ')') : NULL;
        if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2
            || ppid != 2)
            continue;
        pid_t pid = (pid_t)atol(e->d_name);
        found = pid;
    }
    closedir(d);
    return found;
}

int
ms_ksmd_cpu_s(pid_t ksmd, double *seconds)
{
    ps_stat_t st;
    if (ksmd <= 0)
        return -ENOENT;
    int r = ps_read_stat(ksmd, &st);
    if (r < 0)
        return r;
    long tck = sysconf(_SC_CLK_TCK);
    *seconds = (double)(st.utime_ticks + st.stime_ticks)
               / (double)(tck > 0 ? tck : 100);
    return 0;
}

/* ---- KSM pages ------------------------------------------------------------- */

typedef struct {
    uint64_t *pfn;
    size_t n, cap;
    int oom, hidden;
} pfns_t;

static void
take_pfn(void *arg, size_t index, uintptr_t vaddr, uint64_t entry)
{
    pfns_t *p = arg;
    (void)index;
    (void)vaddr;
    if (!(entry & PS_PM_PRESENT))
        return;
    uint64_t pfn = entry & PS_PM_PFN_MASK;
    if (pfn == 0) {
        p->hidden = 1;              /* frame numbers need CAP_SYS_ADMIN */
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4096;
        uint64_t *t = realloc(p->pfn, cap * sizeof *t);
        if (t == NULL) {
            p->oom = 1;
            return;
        }
        p->pfn = t;
        p->cap = cap;
    }
    p->pfn[p->n++] = pfn;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define KPF_RUN 512                     /* flags read at most per pread */

int
ms_ksm_count_pages(const ps_snap_t *s, ps_pagemap_t *pm, int kpageflags,
                   size_t *ksm_pages)
{
    pfns_t p = { NULL, 0, 0, 0, 0 };
    uint64_t flags[KPF_RUN];
    size_t count = 0;
    int r;

    if (kpageflags < 0 || ksm_pages == NULL)
        return -EINVAL;
    r = ps_snap_each_entry(s, pm, take_pfn, &p);
    if (r == 0 && p.oom)
        r = -ENOMEM;
    if (r == 0 && p.hidden && p.n == 0)
        r = -EPERM;
    if (r < 0) {
        free(p.pfn);
        return r;
    }
    /* Frames sorted, so that frames close together are read in one
     * pread (a heap built in one go often has neighbouring frames). */
    qsort(p.pfn, p.n, sizeof *p.pfn, cmp_u64);
    for (size_t i = 0; i < p.n;) {
        uint64_t first = p.pfn[i];
        size_t j = i;
        while (j < p.n && p.pfn[j] - first < KPF_RUN)
            j++;
        size_t want = (size_t)(p.pfn[j - 1] - first + 1);
        ssize_t got;
        do
            got = pread(kpageflags, flags, want * sizeof(uint64_t),
                        (off_t)(first * sizeof(uint64_t)));
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            r = -errno;
            break;
        }
        for (size_t k = i; k < j; k++) {
            size_t at = (size_t)(p.pfn[k] - first);
            if ((size_t)got >= (at + 1) * sizeof(uint64_t)
                && (flags[at] >> KPF_KSM_BIT) & 1)
                count++;
        }
        i = j;
    }
    free(p.pfn);
    if (r == 0)
        *ksm_pages = count;
    return r;
}

int
ms_ksm_open_kpageflags(void)
{
    int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
