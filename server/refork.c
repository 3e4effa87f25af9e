/*
 * refork.c -- the mold and its messages; the protocol is in refork.h.
 *
 * The invariant the copy counters rely on: the mold writes no heap page
 * after its first fork.  Before it, it may write freely (the policy, the
 * snapshot, the ranges sent to the master: malloc'd memory, never the
 * runtime's arenas).  From then on the mold only
 *   - blocks in recvmsg() on its ctl socket, into this function's stack;
 *   - fork()s (the kernel write-protects its page table entries, which
 *     changes no page's bytes) and waitpid()s the short-lived child;
 *   - closes the fds it received, and writes its stats slot (the shared
 *     region, not the heap) when it exits.
 * No malloc, no stdio, no runtime call, no libuv: its uv loop is closed
 * before the first fork.  A child it forks builds its own state from a
 * struct on its copy of that stack.  The master checks the invariant
 * where it can: as root it reads the mold's page frame numbers at its
 * snapshot and at every sample (heap_moved_pages: a write to a page it
 * shares would have moved that page to a new frame).
 */
#include "refork.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master.h"
#include "worker.h"

int
srv_rf_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    return 0;
}

static size_t
msg_len(const srv_rf_msg_t *m)
{
    size_t n = m->type == RF_RANGES ? m->nranges : 0;
    if (n > RF_RANGES_MAX)
        n = RF_RANGES_MAX;
    return offsetof(srv_rf_msg_t, ranges) + n * sizeof(ps_range_t);
}

int
srv_rf_send(int fd, const srv_rf_msg_t *m, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { (void *)m, msg_len(m) };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t r;
    do
        r = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return (size_t)r == iov.iov_len ? 0 : -EMSGSIZE;
}

int
srv_rf_recv(int fd, srv_rf_msg_t *m, int fds[2])
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { m, sizeof *m };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    fds[0] = fds[1] = -1;
    ssize_t r;
    do
        r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    int k = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
         c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int got[4];
        memcpy(got, CMSG_DATA(c), (n > 4 ? 4 : n) * sizeof(int));
        for (size_t i = 0; i < n && i < 4; i++) {
            if (k < 2)
                fds[k++] = got[i];
            else
                close(got[i]);
        }
    }
    if (r == 0)
        return 0;
    if ((size_t)r < offsetof(srv_rf_msg_t, ranges)) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return -EPROTO;
    }
    return 1;
}

/* Send the heap's ranges, RF_RANGES_MAX a message, then RF_READY. */
static int
send_ranges(int fd, const ps_snap_t *snap)
{
    size_t n;
    const ps_range_t *r = ps_snap_ranges(snap, &n);
    srv_rf_msg_t m;
    memset(&m, 0, sizeof m);
    for (size_t i = 0; i < n; i += RF_RANGES_MAX) {
        m.type = RF_RANGES;
        m.nranges = (unsigned)(n - i < RF_RANGES_MAX ? n - i
                                                     : RF_RANGES_MAX);
        memcpy(m.ranges, r + i, m.nranges * sizeof *r);
        int e = srv_rf_send(fd, &m, NULL, 0);
        if (e < 0)
            return e;
    }
    m.type = RF_READY;
    m.nranges = (unsigned)n;
    return srv_rf_send(fd, &m, NULL, 0);
}

/* In the mold's child: fork the worker, say its pid, exit (the worker is
 * then the master's to reap).  Never returns. */
static _Noreturn void
fork_worker(const srv_mold_args_t *a, const ps_snap_t *snap,
            const srv_rf_msg_t *m, const int fds[2])
{
    pid_t pid = fork();
    if (pid == 0) {
        close(a->ctl_fd);
        srv_worker_args_t wa = {
            .cfg = a->cfg, .heap = a->heap, .app = a->app, .spec = a->spec,
            .slot = &a->slots[m->slot], .listen_fd = fds[0],
            .index = m->index, .seed = m->seed, .master = a->master,
            .snap = snap, .ctl_fd = fds[1], .generation = a->generation,
            .reparent = 1, .slots = a->slots, .nslots = a->nslots,
            .attribution = a->attribution, .routes_all = a->routes,
            .routes = srv_routes_of(a->routes, (int)m->slot),
        };
        srv_worker_main(&wa);
    }
    srv_rf_msg_t r;
    memset(&r, 0, sizeof r);
    r.type = RF_FORKED;
    r.slot = m->slot;
    r.pid = pid < 0 ? -errno : (int)pid;
    srv_rf_send(a->ctl_fd, &r, NULL, 0);
    _exit(0);
}

_Noreturn void
srv_mold_main(const srv_mold_args_t *a)
{
    ps_snap_t *snap = NULL;
    char msg[160];
    atomic_store(&a->own->state, SLOT_MOLD);
    /* What the master did before its fork: the mold is a master now. */
    if (srv_apply_prefork_policy(a->cfg, a->heap, NULL) < 0) {
        snprintf(msg, sizeof msg, "cowlab: mold: the pre-fork policy "
                 "failed\n");
        fputs(msg, stderr);
        _exit(70);
    }
    /* --refcount split: every object alive now is inherited by the
     * mold's workers (before the snapshot: whatever it writes is the
     * mold's own, then only read at each fork). */
    if (rt_before_fork(a->heap) < 0) {
        fputs("cowlab: mold: out of memory preparing the fork\n", stderr);
        _exit(70);
    }
    int r = srv_snapshot_heap(&snap);
    if (r == 0)
        r = send_ranges(a->ctl_fd, snap);
    if (r < 0) {
        snprintf(msg, sizeof msg, "cowlab: mold: cannot snapshot or send "
                 "its heap: %s\n", strerror(-r));
        fputs(msg, stderr);
        _exit(70);
    }
    /* Stop signals kill the mold (default actions since its uv handles
     * closed): it has nothing to tear down that the kernel does not. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGQUIT);
    sigprocmask(SIG_UNBLOCK, &stop, NULL);

    /* From here on: no write to the heap (see the top of this file). */
    for (;;) {
        srv_rf_msg_t m;
        int fds[2];
        int got = srv_rf_recv(a->ctl_fd, &m, fds);
        if (got == -EAGAIN || got == -EINTR)
            continue;
        if (got <= 0 || m.type == RF_EXIT)
            break;                  /* told to, or the master is gone */
        if (m.type != RF_FORK || m.slot < 0 || (unsigned)m.slot >= a->nslots
            || fds[0] < 0 || fds[1] < 0) {
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            continue;               /* not for a mold: ignore it */
        }
        /* Objects already marked are only read (object.h): no write
         * to the heap after the snapshot. */
        pid_t child = -1;
        int fork_errno = ENOMEM;
        if (rt_before_fork(a->heap) >= 0) {
            child = fork();
            fork_errno = errno;
        }
        if (child == 0)
            fork_worker(a, snap, &m, fds);
        close(fds[0]);
        close(fds[1]);
        if (child < 0) {
            srv_rf_msg_t e;
            memset(&e, 0, sizeof e);
            e.type = RF_FORKED;
            e.slot = m.slot;
            e.pid = -fork_errno;
            srv_rf_send(a->ctl_fd, &e, NULL, 0);
            continue;
        }
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    atomic_store(&a->own->state, SLOT_DONE);
    _exit(0);
}
