/*
 * listen.h -- the listening sockets the master opens before it forks the
 * workers: one shared socket, or one SO_REUSEPORT socket per worker.
 * Returns are fds or negative errno (libuv style).  Implementation:
 * listen.c.
 */
#ifndef SRV_LISTEN_H
#define SRV_LISTEN_H

/*
 * socket + SO_REUSEADDR + bind + listen on host:port (host NULL means
 * 127.0.0.1; backlog <= 0 means SOMAXCONN).  The fd is non-blocking and not
 * close-on-exec, so forked workers inherit it.  Port 0 picks a free port;
 * bound_port (may be NULL) receives the port.  Returns the fd or -errno.
 */
int
srv_listen_tcp(const char *host, int port, int backlog, int *bound_port);

/* n listening sockets on one port with SO_REUSEPORT, one per worker: the
 * kernel spreads new connections over them by hash, where one shared
 * socket lets whichever worker wakes first take a whole burst.  Port 0
 * picks a free port for all; 0 or -errno (then none is left open). */
int
srv_listen_tcp_group(const char *host, int port, int backlog, int n,
                     int *fds, int *bound_port);

#endif /* SRV_LISTEN_H */
