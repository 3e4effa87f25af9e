/*
 * listen.c -- listening TCP sockets for the master to hand to its workers
 * (API: listen.h): resolve the host numerically or by name, try each
 * address until one binds, and report the port that port 0 picked.
 */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
listen_one(const char *host, int port, int backlog, int reuseport,
           int *bound_port)
{
    struct addrinfo hints, *res, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char service[8];
    int fd = -1, err = -EADDRNOTAVAIL, one = 1, rc;

    if (port < 0 || port > 65535)
        return -EINVAL;
    if (host == NULL)
        host = "127.0.0.1";
    if (backlog <= 0)
        backlog = SOMAXCONN;
    snprintf(service, sizeof(service), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        switch (rc) {
        case EAI_SYSTEM: return errno ? -errno : -EINVAL;
        case EAI_MEMORY: return -ENOMEM;
        case EAI_AGAIN:  return -EAGAIN;
        default:         return -EADDRNOTAVAIL;
        }
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0
            && (!reuseport || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
                                         sizeof(one)) == 0)
            && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
            && listen(fd, backlog) == 0)
            break;
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err;
    if (bound_port != NULL) {
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
            goto error;
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;

error:
    err = -errno;
    close(fd);
    return err;
}

int
srv_listen_tcp(const char *host, int port, int backlog, int *bound_port)
{
    return listen_one(host, port, backlog, 0, bound_port);
}

int
srv_listen_tcp_group(const char *host, int port, int backlog, int n,
                     int *fds, int *bound_port)
{
    int bound = port;
    for (int i = 0; i < n; i++) {
        int fd = listen_one(host, bound, backlog, 1, i == 0 ? &bound : NULL);
        if (fd < 0) {
            while (i-- > 0)
                close(fds[i]);
            return fd;
        }
        fds[i] = fd;
    }
    if (bound_port != NULL)
        *bound_port = bound;
    return 0;
}

