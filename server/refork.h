/*
 * refork.h -- reforking from a warmed worker (Pitchfork's "mold"):
 * the messages between the master and a worker or mold, and the mold's
 * own loop.  The master's side (when to refork, which worker) is in
 * master.c, "Reforking".
 *
 * Every worker forked while --refork-after is on gets one end of a
 * SOCK_SEQPACKET socketpair (ctl_fd); the master keeps the other.
 *
 *   master -> worker  RF_MOLD      become the mold of generation g
 *   worker -> master  RF_RANGES*   its heap ranges, RF_RANGES_MAX a message
 *                     RF_READY     all sent; it forks from now on
 *   master -> mold    RF_FORK      fork worker `index` into stats `slot`,
 *                                  with two fds attached (SCM_RIGHTS): its
 *                                  listening socket and its own ctl end
 *   (a child of the mold) RF_FORKED  the new worker's pid, or -errno
 *   master -> mold    RF_EXIT      a newer mold took over: exit
 *
 * A new worker is a grandchild of the mold: the mold forks a child that
 * forks the worker and exits at once, so the worker is reparented to the
 * master, a child subreaper (PR_SET_CHILD_SUBREAPER), which reaps and
 * respawns it like any worker.
 */
#ifndef SRV_REFORK_H
#define SRV_REFORK_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "object.h"
#include "procstat.h"
#include "slots.h"
#include "workload.h"

enum { RF_MOLD = 1, RF_RANGES, RF_READY, RF_FORK, RF_FORKED, RF_EXIT };

#define RF_RANGES_MAX 128

typedef struct srv_rf_msg {
    int type;
    unsigned generation;        /* RF_MOLD */
    unsigned index;             /* RF_FORK: logical worker number */
    int slot;                   /* RF_FORK, RF_FORKED: stats slot */
    uint64_t seed;              /* RF_FORK */
    int pid;                    /* RF_FORKED: the worker, or -errno */
    unsigned nranges;           /* RF_RANGES: in ranges[]; RF_READY: all */
    ps_range_t ranges[RF_RANGES_MAX];
} srv_rf_msg_t;

/* A socketpair for one worker: sv[0] the master's end, sv[1] the
 * worker's; both close-on-exec.  0 or -errno. */
int srv_rf_pair(int sv[2]);
/* Send m (only as many ranges as it holds) with nfds fds attached (0..2).
 * 0 or -errno. */
int srv_rf_send(int fd, const srv_rf_msg_t *m, const int *fds, int nfds);
/* Receive one message, and up to 2 attached fds into fds (-1 where none
 * came; extra fds are closed).  1 a message, 0 the other end closed,
 * -EAGAIN nothing waiting (non-blocking fd), -errno. */
int srv_rf_recv(int fd, srv_rf_msg_t *m, int fds[2]);

/* What a mold needs: what its worker was started with, and its own. */
typedef struct srv_mold_args {
    const cfg_t *cfg;
    rt_heap_t *heap;
    wl_app_t *app;
    const wl_spec_t *spec;
    srv_slot_t *slots;          /* the whole stats region (slot i) */
    unsigned nslots;
    srv_slot_t *own;            /* the mold's slot */
    int ctl_fd;
    pid_t master;
    unsigned generation;        /* this mold's */
    int attribution;            /* SRV_ATTR_* for its workers */
    const srv_routes_t *routes; /* routes.csv rows of every slot */
} srv_mold_args_t;

/*
 * Become the mold: apply the pre-fork policy to the heap as the master did
 * (--freeze, --immortal), snapshot the heap's pages, send the ranges,
 * then only fork on request until RF_EXIT, a stop signal or the master's
 * death.  It writes no heap page after its first fork (refork.c says
 * how), so its children's copies count against its snapshot.  Never
 * returns.
 */
_Noreturn void srv_mold_main(const srv_mold_args_t *a);

#endif
