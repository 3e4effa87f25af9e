/*
 * http.h -- the worker's HTTP/1.1 server: keep-alive, pipelining, limits and
 * timeouts on a libuv loop, serving an inherited listening socket.
 * Request bodies go to one synchronous handler; protocol errors (4xx) are
 * answered here and never reach it.  Errors are negative errno (libuv style).
 * Implementation: http.c (connections), http_parse.c (requests, and the
 * request-framing rules), listen.c (listening sockets).
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "listen.h"    /* srv_listen_tcp(): the sockets it serves */

/*
 * Per-worker limits.  srv_http_limits_default() fills every field with the
 * defaults below: they are the server's defaults (config.c takes them
 * from there).  srv_http_start() takes every field as it is, so 0 means
 * one thing per field, the one written beside it; a field that cannot be
 * 0 makes srv_http_start() fail with -EINVAL.
 */
typedef struct srv_http_limits {
    size_t max_header_bytes;   /* request line + headers; default 8192 -> 431
                                * (not 0) */
    size_t max_url_bytes;      /* request target; default 4096 -> 414
                                * (not 0) */
    size_t max_body_bytes;     /* decoded body; default 1 MiB -> 413; 0: no
                                * request may have a body */
    unsigned header_timeout_ms;    /* whole head from its first byte, and
                                    * any gap inside a body: 408, close;
                                    * default 10000 (not 0) */
    unsigned keepalive_timeout_ms; /* idle connection closed; default 5000;
                                    * 0: no keep-alive, every response says
                                    * "Connection: close" and the
                                    * connection closes after it */
    unsigned max_connections;      /* per worker; beyond: 503, close;
                                    * default 1000 (not 0) */
    unsigned write_timeout_ms;     /* queued response makes no progress:
                                    * close; default 10000 (not 0) */
    size_t max_write_queue_bytes;  /* unsent response bytes above which the
                                    * connection stops reading; 256 KiB; 0:
                                    * stop while anything is unsent */
} srv_http_limits_t;

/* Fill *l with the defaults listed above. */
void
srv_http_limits_default(srv_http_limits_t *l);

/* One parsed request; valid only during the handler call. */
typedef struct srv_request {
    const char *method;     /* "GET", "POST", ... */
    const char *path;       /* URL path, NUL-terminated, without query */
    const char *query;      /* after '?', or "" */
    const char *body;       /* never NULL; NUL-terminated after body_len */
    size_t body_len;
    int keep_alive;         /* the connection stays open after this */
} srv_request_t;

/* The handler's answer; the http layer owns body once the handler returns. */
typedef struct srv_response {
    int status;                 /* handler sets; default 200 */
    const char *content_type;   /* default "application/json" */
    char *body;                 /* malloc'd by the handler; freed here */
    size_t body_len;
    int close;                  /* nonzero: close after this response */
} srv_response_t;

typedef void (*srv_handler_fn)(void *ctx, const srv_request_t *req,
                               srv_response_t *resp);

/* Cumulative per-worker counts; read them with srv_http_counters(). */
typedef struct srv_http_counters {
    uint64_t requests;          /* requests handed to the handler */
    uint64_t responses_4xx;     /* handler's and the parser layer's */
    uint64_t responses_5xx;
    uint64_t connections;       /* accepted and served */
    uint64_t conn_rejected;     /* over max_connections: 503 and closed */
    uint64_t timeouts;          /* 408s sent plus stalled writes closed */
} srv_http_counters_t;

typedef struct srv_http srv_http_t;

/*
 * Start serving on listen_fd, an already bound and listening socket
 * (usually inherited across fork()).  The server works on a dup of it, so
 * listen_fd stays the caller's to close.  lim may be NULL (defaults);
 * -EINVAL if one of its fields that cannot be 0 is.
 */
int
srv_http_start(uv_loop_t *loop, int listen_fd, const srv_http_limits_t *lim,
               srv_handler_fn fn, void *ctx, srv_http_t **out);

/*
 * Graceful stop: stop accepting; busy connections close after their
 * response (sent with "Connection: close"), idle ones after one more
 * request that was already on its way (answered the same way) or after
 * at most 1 s without one; then call done_cb (may be NULL) from the loop
 * once every handle is closed.  Calling it again does nothing.
 */
void
srv_http_stop(srv_http_t *h, void (*done_cb)(void *arg), void *arg);

/* Free h; only after srv_http_stop() has called back (all handles closed). */
void
srv_http_free(srv_http_t *h);

const srv_http_counters_t *
srv_http_counters(const srv_http_t *h);

/* Open connections, lingering ones included. */
size_t
srv_http_active_connections(const srv_http_t *h);

/*
 * Test hook (fault injection): the next n new connections fail to get
 * their memory, as under out-of-memory.  Each is still accepted, answered
 * 503 if possible and closed, and the server goes on accepting.
 */
void
srv_http_fail_next_conns(srv_http_t *h, unsigned n);

#endif /* SRV_HTTP_H */
