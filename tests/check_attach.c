/*
 * check_attach.c -- tests for `cowlab attach` (measure/attach.c and
 * server/attach_cmd.c): the maps, stat and children parsers and the page
 * classifier on known entries; then the command against a process tree
 * made here, whose counts are known exactly: a master with N private pages
 * forks children that write exactly k of them (and q pages the master
 * never had), the master writes m of them after the fork, and
 *   page frames:    copied == k, copied_by_master == m, new == q,
 *                   shared == N - k - m, for a sibling that writes
 *                   nothing copied == 0;
 *   exclusive bit:  (CAP_SYS_ADMIN dropped) the upper bound, also exact
 *                   here: a page the master wrote and one sibling alone
 *                   still maps counts as that sibling's copy.
 * And: a worker killed and replaced is picked up with the number of the
 * one it replaces; a master that dies mid-run ends the run cleanly with
 * whole rows; a quick gunicorn run where gunicorn is installed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "attach.h"
#include "support.h"

#define PM_PRESENT      ((uint64_t)1 << 63)
#define PM_EXCLUSIVE    ((uint64_t)1 << 56)

static long psize;

/* ---- parsers ------------------------------------------------------------ */

START_TEST(attach_maps_keeps_private_anonymous)
{
    const char *maps =
        "55d0c0000000-55d0c0002000 r--p 00000000 08:01 1234  /usr/bin/python3.11\n"
        "55d0c0002000-55d0c0004000 rw-p 00002000 08:01 1234  /usr/bin/python3.11\n"
        "55d0c0004000-55d0c0006000 rw-p 00000000 00:00 0 \n"
        "55d0c1000000-55d0c1800000 rw-p 00000000 00:00 0          [heap]\n"
        "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n"
        "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n"
        "7f0000200000-7f0000300000 ---p 00000000 00:00 0 \n"
        "7f0000300000-7f0000301000 rw-s 00000000 00:01 77   /dev/zero (deleted)\n"
        "7f0000400000-7f0000402000 rw-p 00000000 00:00 0   [anon:cowlab test]\n"
        "7f0000500000-7f0000501000 r--p 00000000 00:00 0 \n"
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0          [stack]\n"
        "7ffd00100000-7ffd00104000 r--p 00000000 00:00 0          [vvar]\n"
        "7ffd00104000-7ffd00106000 r-xp 00000000 00:00 0          [vdso]\n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n";
    ps_range_t *r = NULL;
    size_t n = 0;

    att_skipped_t sk;
    ck_assert_int_eq(att_parse_maps(maps, strlen(maps), 0, &r, &n, &sk), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_uint_eq(sk.n, 0);
    ck_assert_uint_eq(r[0].start, 0x55d0c0004000);      /* bss-like */
    ck_assert_uint_eq(r[0].end, 0x55d0c0006000);
    ck_assert_uint_eq(r[1].start, 0x55d0c1000000);      /* [heap] */
    ck_assert_uint_eq(r[2].start, 0x7f0000000000);      /* two, merged */
    ck_assert_uint_eq(r[2].end, 0x7f0000200000);
    ck_assert_uint_eq(r[3].start, 0x7f0000400000);      /* [anon:...] */
    ck_assert_uint_eq(r[4].start, 0x7f0000500000);      /* read-only anon */
    free(r);
    /* a mapping larger than the limit is left out, and counted */
    ck_assert_int_eq(att_parse_maps(maps, strlen(maps), 0x200000, &r, &n,
                                    &sk), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(sk.n, 1);
    ck_assert_uint_eq(sk.bytes, 0x800000);              /* the [heap] */
    ck_assert_uint_eq(r[1].start, 0x7f0000000000);
    free(r);

    const char *bad[] = {
        "zz-1000 rw-p 00000000 00:00 0\n",
        "2000-1000 rw-p 00000000 00:00 0\n",            /* start > end */
        "1001-2000 rw-p 00000000 00:00 0\n",            /* not aligned */
        "1000-2000 rw-p 00000000 00:00\n",              /* no inode */
        "1000-2000 rwp 00000000 00:00 0\n",             /* perms */
        "1000-2000 rw-p 00000000 00:00 12a\n",          /* inode */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = NULL;
        ck_assert_msg(att_parse_maps(bad[i], strlen(bad[i]), 0, &r, &n,
                                     NULL) == -EINVAL, "accepted: %s",
                      bad[i]);
        ck_assert_ptr_null(r);
    }
    /* an empty maps text is no range, not an error */
    ck_assert_int_eq(att_parse_maps("", 0, 0, &r, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(attach_ranges_clip_and_parse)
{
    ps_range_t k, keep[2];
    ck_assert_int_eq(att_parse_range("0x10000-0x20000", &k), 0);
    ck_assert_uint_eq(k.start, 0x10000);
    ck_assert_uint_eq(k.end, 0x20000);
    ck_assert_int_eq(att_parse_range("7f0000001000-7f0000003000", &k), 0);
    ck_assert_uint_eq(k.end - k.start, 0x2000);
    const char *bad[] = { "", "1000", "1000-", "-2000", "2000-1000",
                          "1000-1000", "1001-2000", "1000-2000x",
                          "g000-2000", "1000 -2000" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(att_parse_range(bad[i], &k) == -EINVAL, "accepted '%s'",
                      bad[i]);

    ps_range_t *r = malloc(3 * sizeof *r);
    size_t n = 3;
    r[0] = (ps_range_t){ 0x50000, 0x60000 };
    r[1] = (ps_range_t){ 0x10000, 0x30000 };
    r[2] = (ps_range_t){ 0x80000, 0x90000 };
    keep[0] = (ps_range_t){ 0x20000, 0x58000 };
    keep[1] = (ps_range_t){ 0x28000, 0x2a000 };         /* inside keep[0] */
    ck_assert_int_eq(att_clip_ranges(&r, &n, keep, 2), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(r[0].start, 0x20000);
    ck_assert_uint_eq(r[0].end, 0x30000);
    ck_assert_uint_eq(r[1].start, 0x50000);
    ck_assert_uint_eq(r[1].end, 0x58000);
    free(r);
}
END_TEST

START_TEST(attach_stat_and_children_parse)
{
    /* comm holds ") S 1 (": fields are read after the last ')' */
    const char *stat = "4242 (evil) S 1 () S 77 4242 4242 0 -1 4194560 153 "
                       "0 0 0 1 2 0 0 20 0 1 0 987654321 10000 200 "
                       "18446744073709551615 1 1 0\n";
    pid_t ppid;
    unsigned long long st;

    ck_assert_int_eq(att_parse_stat_ppid(stat, strlen(stat), &ppid, &st), 0);
    ck_assert_int_eq(ppid, 77);
    ck_assert_uint_eq(st, 987654321ull);
    const char *bad[] = { "", "12 (x)", "12 x S 1 2", "12 (x) S -3 1 1 1 1 1 "
                          "1 1 1 1 1 1 1 1 1 1 1 1 1 1\n",
                          "12 (x) S 3 1 1 1 1 1\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(att_parse_stat_ppid(bad[i], strlen(bad[i]), &ppid, &st)
                      == -EINVAL, "accepted '%s'", bad[i]);

    pid_t out[3];
    size_t n = 0;
    ck_assert_int_eq(att_parse_children("12 34 \n", 7, out, 3, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(out[0], 12);
    ck_assert_int_eq(out[1], 34);
    ck_assert_int_eq(att_parse_children("5 6 ", 4, out, 3, &n), -ENOSPC);
    ck_assert_uint_eq(n, 3);
    n = 0;
    ck_assert_int_eq(att_parse_children("5 x", 3, out, 3, &n), -EINVAL);
    n = 0;
    ck_assert_int_eq(att_parse_children("0 ", 2, out, 3, &n), -EINVAL);
    n = 0;
    ck_assert_int_eq(att_parse_children("", 0, out, 3, &n), 0);
    ck_assert_uint_eq(n, 0);

    /* the live ones: we are our child's parent, by either method */
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    for (int scan = 0; scan < 2; scan++) {
        pid_t kids[16];
        att_children_how_t how;
        int found = 0;
        ck_assert_int_eq(att_children(getpid(), kids, 16, &n, scan, &how), 0);
        for (size_t i = 0; i < n; i++)
            found += kids[i] == kid;
        ck_assert_int_eq(found, 1);
        if (scan)
            ck_assert_int_eq(how, ATT_CHILDREN_SCAN);
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    ck_assert_int_eq(att_children(kid, NULL, 0, &n, 0, NULL), -ESRCH);
}
END_TEST

/* ---- the classifier ----------------------------------------------------- */

#define P(pfn) (PM_PRESENT | (uint64_t)(pfn))
#define PX(pfn) (PM_PRESENT | PM_EXCLUSIVE | (uint64_t)(pfn))

START_TEST(attach_classify_cases)
{
    /* base, now (master), w (worker), then what it is */
    static const struct { uint64_t b, m, w; const char *what; } c[] = {
        { P(10), P(10), P(10), "shared" },
        { P(11), P(11), PX(99), "copied" },
        { P(12), PX(50), P(12), "by_master" },      /* master wrote it */
        { P(13), PX(51), PX(98), "by_master" },     /* both did */
        { P(14), 0, P(14), "by_master" },           /* master unmapped it */
        { P(15), P(15), 0, "absent" },
        { 0, 0, PX(97), "new" },
        { 0, P(16), P(16), "new" },         /* the master's too: still new */
        { 0, 0, 0, "none" },
        { P(17), PX(52), PX(52), "shared" },        /* forked after the move */
    };
    size_t n = sizeof c / sizeof c[0];
    uint64_t b[16], m[16], w[16];
    for (size_t i = 0; i < n; i++) {
        b[i] = c[i].b;
        m[i] = c[i].m;
        w[i] = c[i].w;
    }
    att_counts_t k = { 0, 0, 0, 0, 0, 0 };
    att_classify(b, m, w, n, ATT_PFN, &k);
    ck_assert_uint_eq(k.heap_pages, 7);
    ck_assert_uint_eq(k.shared, 2);
    ck_assert_uint_eq(k.copied, 1);
    ck_assert_uint_eq(k.by_master, 3);
    ck_assert_uint_eq(k.absent, 1);
    ck_assert_uint_eq(k.new_pages, 2);
    ck_assert_uint_eq(k.heap_pages, k.shared + k.copied + k.by_master
                                    + k.absent);
    /* exclusive bit: every exclusive base page of the worker is "copied" */
    att_counts_t x = { 0, 0, 0, 0, 0, 0 };
    att_classify(b, m, w, n, ATT_EXCLUSIVE, &x);
    ck_assert_uint_eq(x.heap_pages, 7);
    ck_assert_uint_eq(x.copied, 3);
    ck_assert_uint_eq(x.shared, 0);
    ck_assert_uint_eq(x.by_master, 0);
    ck_assert_uint_eq(x.absent, 1);
    ck_assert_uint_eq(x.new_pages, 2);
    /* adds to what is there */
    att_classify(b, m, w, n, ATT_PFN, &k);
    ck_assert_uint_eq(k.copied, 2);
}
END_TEST

START_TEST(attach_frames_read_own_pages)
{
    /* 8 pages, the even ones touched: present exactly there */
    char *p = mmap(NULL, 8 * (size_t)psize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    for (int i = 0; i < 8; i += 2)
        p[i * psize] = 1;
    ps_range_t r = { (uintptr_t)p, (uintptr_t)p + 8 * (size_t)psize };
    att_frames_t *f, *g;
    ps_pagemap_t pm;
    ck_assert_int_eq(att_frames_new(&f, &r, 1), 0);
    ck_assert_int_eq(ps_pagemap_open(&pm, 0), 0);
    ck_assert_int_eq(att_frames_read(f, &pm), 0);
    ck_assert_uint_eq(att_frames_pages(f), 8);
    ck_assert_uint_eq(att_frames_present(f), 4);
    const uint64_t *e = att_frames_entries(f);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq((e[i] & PM_PRESENT) != 0, i % 2 == 0);
    /* compared with itself: every page shared (frames or not) */
    att_counts_t c;
    ck_assert_int_eq(att_count(f, f, &pm, ATT_PFN, &c), 0);
    ck_assert_uint_eq(c.heap_pages, 4);
    ck_assert_uint_eq(c.shared, 4);
    ck_assert_uint_eq(c.copied + c.by_master + c.absent + c.new_pages, 0);
    /* references: a second holder keeps it alive */
    g = att_frames_ref(f);
    ck_assert(!att_frames_unique(f));
    att_frames_unref(g);
    ck_assert(att_frames_unique(f));
    ck_assert_int_eq(att_frames_like(&g, f), 0);
    ck_assert_uint_eq(att_frames_pages(g), 8);
    ck_assert_uint_eq(att_frames_present(g), 0);
    att_frames_unref(g);
    ps_pagemap_close(&pm);
    att_frames_unref(f);
    munmap(p, 8 * (size_t)psize);
    ps_range_t bad = { (uintptr_t)p + 1, (uintptr_t)p + 4096 };
    ck_assert_int_eq(att_frames_new(&f, &bad, 1), -EINVAL);
}
END_TEST

/* ---- a process tree of known pages ------------------------------------- */

/*
 * The tree's master, forked by the test: N pages of its own in a region
 * of N + Q (the last Q never touched), then it obeys commands from the
 * test on a pipe, one at a time, each answered on another:
 *   FORK  id first count newcount  a child (dies with it) that writes
 *         pages [first, first+count), the extra page `extra` (or -1),
 *         and newcount of the Q pages, answers, then waits;
 *   WRITE first count              the master writes those pages;
 *   KILL  id                       SIGKILL child id, reaped.
 * The region's address is its first answer.
 */
enum { N_PAGES = 64, Q_PAGES = 16, MAX_KIDS = 4 };
enum { CMD_FORK = 1, CMD_WRITE, CMD_KILL };

typedef struct cmd {
    int op, id, first, count, newcount, extra;
} cmd_t;

typedef struct tree {
    pid_t pid;
    int cmd, ack;
    uintptr_t region;
    pid_t kids[MAX_KIDS];
} tree_t;

static void
touch(char *region, int page)
{
    ((volatile char *)region)[(long)page * psize] += 1;
}

static void
tree_master(int cmd_fd, int ack_fd)
{
    size_t len = (size_t)(N_PAGES + Q_PAGES) * (size_t)psize;
    char *region = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t kids[MAX_KIDS] = { 0 };
    cmd_t c;

    if (region == MAP_FAILED)
        _exit(3);
    madvise(region, len, MADV_NOHUGEPAGE);      /* 4 KiB copy-on-write */
    for (int i = 0; i < N_PAGES; i++)
        touch(region, i);
    uintptr_t at = (uintptr_t)region;
    if (write(ack_fd, &at, sizeof at) != sizeof at)
        _exit(3);
    while (read(cmd_fd, &c, sizeof c) == sizeof c) {
        pid_t answer = 0;
        switch (c.op) {
        case CMD_FORK: {
            pid_t k = fork();
            if (k == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (int i = c.first; i < c.first + c.count; i++)
                    touch(region, i);
                if (c.extra >= 0)
                    touch(region, c.extra);
                for (int i = 0; i < c.newcount; i++)
                    touch(region, N_PAGES + i);
                pid_t me = getpid();
                if (write(ack_fd, &me, sizeof me) != sizeof me)
                    _exit(3);
                for (;;)
                    pause();
            }
            kids[c.id] = k;
            continue;                   /* the child answers */
        }
        case CMD_WRITE:
            for (int i = c.first; i < c.first + c.count; i++)
                touch(region, i);
            break;
        case CMD_KILL:
            kill(kids[c.id], SIGKILL);
            waitpid(kids[c.id], NULL, 0);
            kids[c.id] = 0;
            break;
        }
        if (write(ack_fd, &answer, sizeof answer) != sizeof answer)
            _exit(3);
    }
    _exit(0);
}

static int
tree_start(tree_t *t)
{
    int c[2], a[2];

    memset(t, 0, sizeof *t);
    if (pipe(c) < 0 || pipe(a) < 0)
        return -1;
    fflush(NULL);
    t->pid = fork();
    if (t->pid < 0)
        return -1;
    if (t->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        close(c[1]);
        close(a[0]);
        tree_master(c[0], a[1]);
    }
    setpgid(t->pid, t->pid);
    close(c[0]);
    close(a[1]);
    t->cmd = c[1];
    t->ack = a[0];
    struct pollfd p = { t->ack, POLLIN, 0 };
    if (poll(&p, 1, 10000) != 1
        || read(t->ack, &t->region, sizeof t->region) != sizeof t->region)
        return -1;
    return 0;
}

/* Send a command and wait for its answer (a child's pid for FORK). */
static pid_t
tree_do(tree_t *t, int op, int id, int first, int count, int newcount,
        int extra)
{
    cmd_t c = { op, id, first, count, newcount, extra };
    pid_t answer = -1;
    struct pollfd p = { t->ack, POLLIN, 0 };

    ck_assert_int_eq(write(t->cmd, &c, sizeof c), (ssize_t)sizeof c);
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    ck_assert_int_eq(read(t->ack, &answer, sizeof answer),
                     (ssize_t)sizeof answer);
    if (op == CMD_FORK)
        t->kids[id] = answer;
    return answer;
}

static void
tree_stop(tree_t *t)
{
    if (t->pid > 0) {
        kill(-t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    if (t->cmd > 0)
        close(t->cmd);
    if (t->ack > 0)
        close(t->ack);
    t->pid = -1;
}

/* ---- cowlab attach, run here -------------------------------------------- */

typedef struct att_run {
    pid_t pid;
    int out;                    /* its stdout */
    char dir[128];
} att_run_t;

/* Start `cowlab attach --pid PID --out DIR ...args`; with drop_admin,
 * without CAP_SYS_ADMIN (dropped from the bounding set, so the exec'd
 * program cannot have it).  Waits for its "attached" line: 0, or -1
 * (with the reason printed).  The launch itself exits 99 when the
 * capability cannot be dropped. */
static int
attach_start(att_run_t *r, pid_t target, int drop_admin,
             const char *const *args)
{
    char pidarg[32];
    const char *argv[40] = { ts_bin(), "attach", "--pid", pidarg, "--out",
                             r->dir, "--sample-ms", "20",
                             "--sample-budget", "0", "--duration", "120" };
    int n = 12, fds[2];

    snprintf(pidarg, sizeof pidarg, "%d", (int)target);
    for (int i = 0; args != NULL && args[i] != NULL && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (pipe(fds) < 0)
        return -1;
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (drop_admin && prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0)
            _exit(99);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    r->out = fds[0];
    char line[512];
    size_t len = 0;
    double end = ts_now_ms() + 20000;
    while (len < sizeof line - 1) {
        struct pollfd p = { r->out, POLLIN, 0 };
        int left = (int)(end - ts_now_ms());
        if (left <= 0 || poll(&p, 1, left) != 1
            || read(r->out, line + len, 1) != 1)
            break;
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    if (strncmp(line, "attached to pid ", 16) != 0) {
        fprintf(stderr, "check_attach: attach did not start: '%s'\n", line);
        return -1;
    }
    return 0;
}

/* SIGTERM it (one last round, then runs.csv) and wait: its status. */
static int
attach_stop(att_run_t *r)
{
    int status = -1;

    if (r->pid <= 0)
        return -1;
    kill(r->pid, SIGTERM);
    double end = ts_now_ms() + 30000;
    while (waitpid(r->pid, &status, WNOHANG) == 0) {
        if (ts_now_ms() > end) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &status, 0);
            break;
        }
        ts_sleep_ms(10);
    }
    close(r->out);
    r->pid = -1;
    return status;
}

/* Poll samples.csv until a row of pid appears (at most 20 s): 0 or -1. */
static int
wait_rows(const att_run_t *r, pid_t pid)
{
    char path[256], needle[32];
    snprintf(path, sizeof path, "%s/samples.csv", r->dir);
    snprintf(needle, sizeof needle, ",%d,", (int)pid);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        char line[2048];
        int found = 0;
        while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
            found = strstr(line, needle) != NULL;
        if (f != NULL)
            fclose(f);
        if (found)
            return 0;
        ts_sleep_ms(10);
    }
    return -1;
}

/* The last row of pid in c: its index; fails the test if there is none. */
static size_t
last_row(const ts_csv_t *c, pid_t pid)
{
    long found = -1;
    for (size_t i = 0; i < c->nrows; i++)
        if (ts_csv_long(c, i, "pid") == pid)
            found = (long)i;
    ck_assert_msg(found >= 0, "no row for pid %d", (int)pid);
    return (size_t)found;
}

static int
pfn_visible(void)
{
    static char page[1 << 16];
    ps_pagemap_t pm;
    uint64_t e = 0;
    uintptr_t a = ((uintptr_t)page + (uintptr_t)psize - 1)
                  & ~((uintptr_t)psize - 1);

    *(volatile char *)a = 1;
    if (ps_pagemap_open(&pm, 0) < 0)
        return 0;
    int r = ps_pagemap_read(&pm, a, &e, 1);
    ps_pagemap_close(&pm);
    return r == 0 && (e & (((uint64_t)1 << 55) - 1)) != 0;
}

static json_t *
load_meta(const att_run_t *r)
{
    char path[256];
    snprintf(path, sizeof path, "%s/meta.json", r->dir);
    json_t *j = json_load_file(path, 0, NULL);
    ck_assert_msg(j != NULL, "no meta.json in %s", r->dir);
    return j;
}

static void
load_csv(const att_run_t *r, const char *name, ts_csv_t *c)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s: %s",
                  path, err);
}

/*
 * The constructed tree: child A writes pages [0, K) and page N-1, and Q_NEW
 * pages the master never had; child B writes nothing; then the master
 * writes pages [N - M, N) (page N-1 included: A's copy of it is counted
 * apart, as the master's).  Attach first, so the snapshot is pre-fork.
 */
enum { K = 10, M = 5, Q_NEW = 3 };

static void
run_tree(int method_pfn, const char *scan_flag, int drop_admin)
{
    tree_t t;
    att_run_t r = { .pid = -1 };
    char range[64];

    ck_assert_int_eq(ts_tmpdir(r.dir, sizeof r.dir, "attach"), 0);
    ck_assert_int_eq(tree_start(&t), 0);
    snprintf(range, sizeof range, "%lx-%lx", (unsigned long)t.region,
             (unsigned long)(t.region + (uintptr_t)(N_PAGES + Q_PAGES)
                             * (uintptr_t)psize));
    const char *args[] = { "--range", range, scan_flag, NULL };
    int st = attach_start(&r, t.pid, drop_admin, args);
    if (st < 0 && r.pid > 0) {
        int status;
        waitpid(r.pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 99) {
            tree_stop(&t);
            ts_rmdir(r.dir);
            TS_SKIP("cannot drop CAP_SYS_ADMIN here (no CAP_SETPCAP)");
        }
    }
    ck_assert_int_eq(st, 0);
    pid_t a = tree_do(&t, CMD_FORK, 0, 0, K, Q_NEW, N_PAGES - 1);
    pid_t b = tree_do(&t, CMD_FORK, 1, 0, 0, 0, -1);
    tree_do(&t, CMD_WRITE, 0, N_PAGES - M, M, 0, -1);
    ck_assert_int_eq(wait_rows(&r, a), 0);
    ck_assert_int_eq(wait_rows(&r, b), 0);
    int status = attach_stop(&r);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "attach status %d", status);
    tree_stop(&t);

    ts_csv_t c;
    load_csv(&r, "samples.csv", &c);
    size_t ra = last_row(&c, a), rb = last_row(&c, b);
    ck_assert_int_eq(ts_csv_long(&c, ra, "heap_pages"), N_PAGES);
    ck_assert_int_eq(ts_csv_long(&c, rb, "heap_pages"), N_PAGES);
    ck_assert_int_eq(ts_csv_long(&c, ra, "heap_new_pages"), Q_NEW);
    ck_assert_int_eq(ts_csv_long(&c, rb, "heap_new_pages"), 0);
    /* what needs the runtime is empty, never 0 */
    const char *empty[] = { "requests", "gc_collections_0", "gc_time_us",
                            "faults_gc", "faults_request", "faults_other",
                            "copied_by_gc", "copied_by_request",
                            "copied_unattributed", "gc_measured" };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++)
        ck_assert_str_eq(ts_csv_get(&c, ra, empty[i]), "");
    ck_assert_int_gt(ts_csv_long(&c, ra, "rss_kb"), 0);
    ck_assert_int_gt(ts_csv_long(&c, ra, "minflt"), 0);
    json_t *meta = load_meta(&r);
    const char *method = json_string_value(json_object_get(meta, "method"));
    ck_assert_ptr_nonnull(method);
    ck_assert_int_eq(json_is_false(json_object_get(meta,
                                                   "attached_after_fork")), 1);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(
        json_object_get(meta, "target"), "exe")));
    if (method_pfn) {
        ck_assert_str_eq(method, "pfn");
        /* exact: A's K pages (its copy of N-1 is the master's), B none */
        ck_assert_int_eq(ts_csv_long(&c, ra, "heap_copied_pages"), K);
        ck_assert_int_eq(ts_csv_long(&c, rb, "heap_copied_pages"), 0);
        ck_assert_int_eq(ts_csv_long(&c, ra, "copied_by_master"), M);
        ck_assert_int_eq(ts_csv_long(&c, rb, "copied_by_master"), M);
        ck_assert_int_eq(ts_csv_long(&c, ra, "heap_shared_pages"),
                         N_PAGES - K - M);
        ck_assert_int_eq(ts_csv_long(&c, rb, "heap_shared_pages"),
                         N_PAGES - M);
    } else {
        ck_assert_str_eq(method, "exclusive-bit");
        ck_assert_int_eq(json_is_true(json_object_get(meta,
                                                      "copies_upper_bound")),
                         1);
        /* the upper bound: A's own K + 1, and the master's page N-1, whose
         * old frame B alone still maps, counts as B's */
        ck_assert_int_eq(ts_csv_long(&c, ra, "heap_copied_pages"), K + 1);
        ck_assert_int_eq(ts_csv_long(&c, rb, "heap_copied_pages"), 1);
        ck_assert_str_eq(ts_csv_get(&c, ra, "copied_by_master"), "");
        ck_assert_str_eq(ts_csv_get(&c, ra, "heap_shared_pages"), "");
    }
    json_decref(meta);
    ts_csv_free(&c);

    load_csv(&r, "runs.csv", &c);
    ck_assert_uint_eq(c.nrows, 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "workers"), 2);
    ck_assert_int_eq(ts_csv_long(&c, 0, "respawns"), 0);
    ck_assert_str_eq(ts_csv_get(&c, 0, "heap_objects"), "");
    ck_assert_str_eq(ts_csv_get(&c, 0, "gc_threshold"), "");
    ck_assert_str_eq(ts_csv_get(&c, 0, "build_ms"), "");
    ck_assert_str_eq(ts_csv_get(&c, 0, "policy"), "attach");
    if (method_pfn)
        ck_assert_int_eq(ts_csv_long(&c, 0, "copied_by_master"), M);
    else
        ck_assert_str_eq(ts_csv_get(&c, 0, "copied_by_master"), "");
    ts_csv_free(&c);
    ts_rmdir(r.dir);
}

START_TEST(attach_tree_exact_with_page_frames)
{
    if (!pfn_visible())
        TS_SKIP("page frame numbers are hidden here (they need "
                "CAP_SYS_ADMIN: run as root)");
    run_tree(1, "--quiet", 0);
    run_tree(1, "--children-scan", 0);  /* workers found the other way */
}
END_TEST

START_TEST(attach_tree_exclusive_bit_without_sys_admin)
{
    /* as root: CAP_SYS_ADMIN dropped for the attach (the fallback found
     * by itself), then --no-pfn; otherwise the frames are hidden already */
    run_tree(0, "--quiet", pfn_visible());
    run_tree(0, "--no-pfn", 0);
}
END_TEST

START_TEST(attach_respawned_worker_takes_its_number)
{
    tree_t t;
    att_run_t r = { .pid = -1 };
    char range[64];
    enum { K2 = 7 };

    if (!pfn_visible())
        TS_SKIP("page frame numbers are hidden here (run as root)");
    ck_assert_int_eq(ts_tmpdir(r.dir, sizeof r.dir, "attach"), 0);
    ck_assert_int_eq(tree_start(&t), 0);
    snprintf(range, sizeof range, "%lx-%lx", (unsigned long)t.region,
             (unsigned long)(t.region + (uintptr_t)N_PAGES
                             * (uintptr_t)psize));
    const char *args[] = { "--range", range, "--quiet", NULL };
    ck_assert_int_eq(attach_start(&r, t.pid, 0, args), 0);
    pid_t a = tree_do(&t, CMD_FORK, 0, 0, 3, 0, -1);
    ck_assert_int_eq(wait_rows(&r, a), 0);
    pid_t b = tree_do(&t, CMD_FORK, 1, 0, 0, 0, -1);
    ck_assert_int_eq(wait_rows(&r, b), 0);
    tree_do(&t, CMD_KILL, 0, 0, 0, 0, -1);
    pid_t a2 = tree_do(&t, CMD_FORK, 0, 10, K2, 0, -1);
    ck_assert_int_eq(wait_rows(&r, a2), 0);
    int status = attach_stop(&r);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tree_stop(&t);

    ts_csv_t c;
    load_csv(&r, "samples.csv", &c);
    size_t ra = last_row(&c, a), rb = last_row(&c, b), ra2 = last_row(&c, a2);
    ck_assert_int_eq(ts_csv_long(&c, ra2, "worker"),
                     ts_csv_long(&c, ra, "worker"));
    ck_assert_int_ne(ts_csv_long(&c, rb, "worker"),
                     ts_csv_long(&c, ra, "worker"));
    /* compared with the master as it was before its fork: exact */
    ck_assert_int_eq(ts_csv_long(&c, ra2, "heap_copied_pages"), K2);
    ck_assert_int_eq(ts_csv_long(&c, ra2, "copied_by_master"), 0);
    ck_assert_int_eq(ts_csv_long(&c, ra, "heap_copied_pages"), 3);
    ts_csv_free(&c);
    load_csv(&r, "runs.csv", &c);
    ck_assert_int_eq(ts_csv_long(&c, 0, "respawns"), 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "workers"), 2);
    ts_csv_free(&c);
    ts_rmdir(r.dir);
}
END_TEST

START_TEST(attach_master_dies_mid_run)
{
    tree_t t;
    att_run_t r = { .pid = -1 };

    ck_assert_int_eq(ts_tmpdir(r.dir, sizeof r.dir, "attach"), 0);
    ck_assert_int_eq(tree_start(&t), 0);
    const char *args[] = { "--quiet", NULL };  /* the whole heap this time */
    ck_assert_int_eq(attach_start(&r, t.pid, 0, args), 0);
    pid_t a = tree_do(&t, CMD_FORK, 0, 0, 4, 0, -1);
    pid_t b = tree_do(&t, CMD_FORK, 1, 0, 0, 0, -1);
    ck_assert_int_eq(wait_rows(&r, a), 0);
    ck_assert_int_eq(wait_rows(&r, b), 0);
    kill(t.pid, SIGKILL);               /* its children die with it */
    /* attach ends by itself, status 0 */
    int status = -1;
    double end = ts_now_ms() + 20000;
    while (waitpid(r.pid, &status, WNOHANG) == 0 && ts_now_ms() < end)
        ts_sleep_ms(10);
    ck_assert_msg(ts_now_ms() < end, "attach did not end with its master");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "attach status %d", status);
    close(r.out);
    tree_stop(&t);

    ts_csv_t c;
    load_csv(&r, "samples.csv", &c);            /* whole rows, or it fails */
    ck_assert_uint_ge(c.nrows, 2);
    size_t ra = last_row(&c, a);
    /* the whole private memory of the tree's master: at least ours */
    ck_assert_int_ge(ts_csv_long(&c, ra, "heap_pages"), N_PAGES);
    ck_assert_int_ge(ts_csv_long(&c, ra, "heap_copied_pages"), 4);
    ts_csv_free(&c);
    load_csv(&r, "runs.csv", &c);
    ck_assert_uint_eq(c.nrows, 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "workers"), 2);
    ck_assert(ts_csv_double(&c, 0, "duration_s") > 0);
    ts_csv_free(&c);
    json_t *meta = load_meta(&r);
    ck_assert_str_eq(json_string_value(json_object_get(meta, "end")),
                     "the master exited");
    json_decref(meta);
    ts_rmdir(r.dir);
}
END_TEST

START_TEST(attach_bad_command_lines)
{
    char out[4096];
    const char *cases[][6] = {
        { "attach", NULL },
        { "attach", "--pid", NULL },
        { "attach", "--pid", "abc", NULL },
        { "attach", "--pid", "0", NULL },
        { "attach", "--pid", "1", "--sample-ms", "0", NULL },
        { "attach", "--pid", "1", "--sample-budget", "101", NULL },
        { "attach", "--pid", "1", "--range", "2000-1000", NULL },
        { "attach", "--pid", "1", "--run-id", "a b", NULL },
        { "attach", "--pid", "1", "--bogus", NULL },
        { "attach", "--pid", "1", "extra", NULL },
        { "attach", "--pid", "4194304", NULL },     /* no such process */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = ts_run(cases[i], out, sizeof out);
        ck_assert_msg(st == 2,
                      "case %zu: status %d: %s", i, st, out);
        ck_assert_msg(strstr(out, "cowlab attach: ") != NULL,
                      "case %zu says nothing clear: %s", i, out);
    }
    const char *help[] = { "attach", "--help", NULL };
    int st = ts_run(help, out, sizeof out);
    ck_assert_int_eq(st, 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: cowlab attach --pid MASTER"));
    /* an unwritable --out is refused at once */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *unw[] = { "attach", "--pid", pid, "--out",
                          "/proc/self/nope", NULL };
    st = ts_run(unw, out, sizeof out);
    ck_assert_int_eq(st, 2);
}
END_TEST

/* ---- gunicorn ----------------------------------------------------------- */

/* A WSGI app that holds a heap of dicts and reads a slice per request. */
static const char gunicorn_app[] =
    "import os\n"
    "HEAP = [{'id': i, 'name': 'item-%d' % i, 'tags': ['a', 'b', str(i)]}\n"
    "        for i in range(60000)]\n"
    "def app(environ, start_response):\n"
    "    n = 0\n"
    "    for d in HEAP[::7]:\n"
    "        n += d['id'] + len(d['tags'])\n"
    "    body = ('%d %d\\n' % (os.getpid(), n)).encode()\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
    "                              ('Content-Length', str(len(body)))])\n"
    "    return [body]\n";

START_TEST(attach_gunicorn_quick)
{
    const char *py = "/usr/bin/python3";
    char dir[100], path[256], log[256], cmd[512];

    if (access(py, X_OK) != 0)
        TS_SKIP("%s is not installed (apt-get install python3)", py);
    snprintf(cmd, sizeof cmd, "%s -c 'import gunicorn' 2>/dev/null", py);
    if (system(cmd) != 0)
        TS_SKIP("gunicorn is not installed for %s (apt-get install "
                "gunicorn)", py);
    ck_assert_int_eq(ts_tmpdir(dir, sizeof dir, "gunicorn"), 0);
    snprintf(path, sizeof path, "%s/cowapp.py", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(gunicorn_app, f);
    fclose(f);
    snprintf(log, sizeof log, "%s/gunicorn.log", dir);
    fflush(NULL);
    pid_t g = fork();
    if (g == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(py, py, "-m", "gunicorn", "--preload", "-w", "2", "-b",
              "127.0.0.1:0", "--chdir", dir, "cowapp:app", (char *)NULL);
        _exit(127);
    }
    setpgid(g, g);
    /* its port, from "Listening at: http://127.0.0.1:PORT" */
    int port = 0;
    for (int i = 0; i < 600 && port == 0; i++) {
        char line[512];
        FILE *l = fopen(log, "r");
        while (l != NULL && fgets(line, sizeof line, l) != NULL) {
            char *p = strstr(line, "Listening at: http://127.0.0.1:");
            if (p != NULL)
                port = atoi(p + strlen("Listening at: http://127.0.0.1:"));
        }
        if (l != NULL)
            fclose(l);
        ts_sleep_ms(50);
    }
    ck_assert_msg(port > 0, "gunicorn did not start (see %s)", log);
    pid_t kids[8];
    size_t n = 0;
    for (int i = 0; i < 400; i++) {
        if (att_children(g, kids, 8, &n, 0, NULL) == 0 && n == 2)
            break;
        ts_sleep_ms(25);
    }
    ck_assert_uint_eq(n, 2);

    att_run_t r = { .pid = -1 };
    snprintf(r.dir, sizeof r.dir, "%s/out", dir);
    const char *args[] = { "--quiet", "--policy-name", "gunicorn", NULL };
    ck_assert_int_eq(attach_start(&r, g, 0, args), 0);
    int ok = 0;
    for (int i = 0; i < 200; i++)
        ok += ts_get(port, "/", NULL, 0) == 200;
    ck_assert_int_eq(ok, 200);
    int status = attach_stop(&r);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    kill(g, SIGTERM);
    waitpid(g, NULL, 0);

    ts_csv_t c;
    load_csv(&r, "samples.csv", &c);
    size_t r0 = last_row(&c, kids[0]), r1 = last_row(&c, kids[1]);
    ck_assert_int_ne(ts_csv_long(&c, r0, "worker"),
                     ts_csv_long(&c, r1, "worker"));
    long heap = ts_csv_long(&c, r0, "heap_pages");
    long copied = ts_csv_long(&c, r0, "heap_copied_pages")
                  + ts_csv_long(&c, r1, "heap_copied_pages");
    /* 60,000 dicts with their strings and lists: several MiB */
    ck_assert_int_gt(heap, 1000);
    /* requests read the heap, and reads write refcounts: copies */
    ck_assert_int_gt(copied, 0);
    ck_assert_int_le(ts_csv_long(&c, r0, "heap_copied_pages"), heap);
    ck_assert_str_eq(ts_csv_get(&c, r0, "requests"), "");
    ck_assert_str_eq(ts_csv_get(&c, r0, "gc_collections_2"), "");
    ck_assert_str_eq(ts_csv_get(&c, r0, "policy"), "gunicorn");
    if (pfn_visible())
        ck_assert_str_ne(ts_csv_get(&c, r0, "copied_by_master"), "");
    ts_csv_free(&c);
    json_t *meta = load_meta(&r);
    ck_assert_int_eq(json_is_true(json_object_get(meta,
                                                  "attached_after_fork")), 1);
    json_t *cl = json_object_get(json_object_get(meta, "target"), "cmdline");
    ck_assert_int_ge((int)json_array_size(cl), 3);
    ck_assert_str_eq(json_string_value(json_array_get(cl, 1)), "-m");
    json_decref(meta);
    ts_rmdir(dir);
}
END_TEST

int
main(void)
{
    psize = sysconf(_SC_PAGESIZE);
    Suite *s = suite_create("attach");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, attach_maps_keeps_private_anonymous);
    tcase_add_test(tc, attach_ranges_clip_and_parse);
    tcase_add_test(tc, attach_stat_and_children_parse);
    tcase_add_test(tc, attach_classify_cases);
    tcase_add_test(tc, attach_frames_read_own_pages);
    suite_add_tcase(s, tc);
    tc = tcase_create("tree");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, attach_tree_exact_with_page_frames);
    tcase_add_test(tc, attach_tree_exclusive_bit_without_sys_admin);
    tcase_add_test(tc, attach_respawned_worker_takes_its_number);
    tcase_add_test(tc, attach_master_dies_mid_run);
    tcase_add_test(tc, attach_bad_command_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("gunicorn");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, attach_gunicorn_quick);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
