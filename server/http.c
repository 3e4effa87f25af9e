/*
 * http.c -- the worker's HTTP/1.1 server on libuv: accepts on an inherited
 * listening socket, feeds each connection's bytes to its request parser
 * (http_parse.c: keep-alive, pipelining, chunked bodies, strict framing),
 * calls the handler synchronously from the read callback and writes its
 * response; answers protocol errors, limits and timeouts itself with a
 * small JSON body, then closes.  Read "Connection states" first, then
 * conn_feed().  API: http.h.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_parse.h"

#define RBUF_SIZE       (64 * 1024)     /* shared read buffer, per server */
#define LINGER_MS       2000            /* discard input after the last
                                         * response, at most this long */
#define STOP_IDLE_MS    1000            /* after srv_http_stop(): how long
                                         * an idle keep-alive connection
                                         * waits for a request on its way */
#define HEAD_MAX        512             /* our response heads */
#define CTYPE_MAX       128
#define MAX_URL_CAP     65535           /* http_parser_url offsets: u16 */
#define MAX_BODY_CAP    ((size_t)1 << 40)

/*
 * Connection states
 *   CS_OPEN     reading and answering requests.
 *   CS_CLOSING  last response queued ("Connection: close"); input is
 *               discarded; when the write queue drains: shutdown(), then
 *               CS_LINGER (or close at once if the peer already sent EOF).
 *   CS_LINGER   FIN sent; input discarded until EOF or LINGER_MS, so that
 *               unread request bytes do not turn our close into an RST that
 *               could destroy the response before the client reads it.
 *   CS_CLOSED   uv_close() called on both handles; freed in on_conn_close().
 * One timer per connection holds the nearest deadline (conn_timer_update).
 */
enum { CS_OPEN, CS_CLOSING, CS_LINGER, CS_CLOSED };

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t sreq;
    struct srv_http *h;
    struct conn *prev, *next;
    int state;
    int handles;                /* open uv handles: freed at 0 */
    unsigned char reading;      /* uv_read_start active */
    unsigned char read_paused;  /* stopped because the write queue is full */
    unsigned char eof;          /* peer sent FIN */
    unsigned wq_reqs;           /* uv_write requests in flight */
    size_t wq_bytes;            /* their bytes */
    size_t wq_mark;             /* write queue size at last progress */
    uint64_t t_idle, t_req_start, t_last_read, t_write_progress, t_linger;
    uint64_t deadline;          /* timer armed for this uv_now() value */
    reqp_t rp;
} conn_t;

/* A queued write: the unsent rest of one response. */
typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    char *body;                 /* owned; freed when the write completes */
    size_t len;                 /* bytes queued by this request */
    char head[];                /* unsent part of the response head */
} wreq_t;

struct srv_http {
    uv_loop_t *loop;
    uv_tcp_t server;
    srv_http_limits_t lim;
    srv_handler_fn fn;
    void *ctx;
    char *rbuf;                 /* read buffer shared by all connections:
                                 * every read is consumed before return */
    conn_t *conns;
    size_t nconns;
    srv_http_counters_t counters;
    int stopping, server_closed, done_called;
    uint64_t t_stop;            /* uv_now() at srv_http_stop() */
    void (*done_cb)(void *arg);
    void *done_arg;
    time_t date_sec;
    char date[40];
    uv_tcp_t spare;             /* takes a connection turned away */
    unsigned char spare_busy;   /* spare is open or closing */
    unsigned char spare_next;   /* TURN_*: one more waits for spare */
    unsigned fail_conns;        /* srv_http_fail_next_conns() */
};

/* ------------------------------------------------------------------ */
/* Connections                                                         */

static void conn_timer_update(conn_t *c);
static void conn_flushed(conn_t *c);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The loop's time in ms, cached once per loop turn (uv_now): deadlines
 * are compared with it, not with a clock read. */
static uint64_t
conn_now(const conn_t *c)
{
    return uv_now(c->h->loop);
}

static void
maybe_done(srv_http_t *h)
{
    if (h->stopping && h->server_closed && h->nconns == 0
        && !h->spare_busy && !h->done_called) {
        h->done_called = 1;
        if (h->done_cb)
            h->done_cb(h->done_arg);
    }
}

static void
on_conn_close(uv_handle_t *handle)
{
    conn_t *c = handle->data;
    srv_http_t *h = c->h;

    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    reqp_fini(&c->rp);
    free(c);
    maybe_done(h);
}

/* Close now; pending writes complete with UV_ECANCELED first. */
static void
conn_close(conn_t *c)
{
    if (c->state == CS_CLOSED)
        return;
    c->state = CS_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    uv_close((uv_handle_t *)&c->timer, on_conn_close);
}

static void
on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;

    c->wq_reqs--;
    c->wq_bytes -= w->len;
    free(w->body);
    free(w);
    if (c->state == CS_CLOSED)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->t_write_progress = conn_now(c);
    c->wq_mark = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (c->wq_reqs == 0)
        conn_flushed(c);
    else
        conn_timer_update(c);
}

/*
 * Send head then body (owned, may be NULL): write what the socket takes now,
 * queue the rest.  Responses stay in order: uv_try_write() is only tried
 * with nothing queued.
 */
static void
conn_send(conn_t *c, const char *head, size_t hlen, char *body, size_t blen)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    size_t total = hlen + blen, done = 0, hrem, boff;
    uv_buf_t b[2];
    unsigned nb = 0;
    wreq_t *w;
    int rc;

    if (c->state == CS_CLOSED)
        goto drop;
    if (c->wq_reqs == 0) {
        b[nb++] = uv_buf_init((char *)head, (unsigned)hlen);
        if (blen)
            b[nb++] = uv_buf_init(body, (unsigned)blen);
        rc = uv_try_write(s, b, nb);
        if (rc < 0 && rc != UV_EAGAIN) {
            conn_close(c);
            goto drop;
        }
        done = rc > 0 ? (size_t)rc : 0;
        if (done == total) {
            free(body);
            conn_flushed(c);
            return;
        }
    }
    hrem = done < hlen ? hlen - done : 0;
    boff = done > hlen ? done - hlen : 0;
    w = malloc(sizeof(*w) + hrem);
    if (w == NULL) {
        conn_close(c);
        goto drop;
    }
    memcpy(w->head, head + (hlen - hrem), hrem);
    w->c = c;
    w->body = body;
    w->len = total - done;
    nb = 0;
    if (hrem)
        b[nb++] = uv_buf_init(w->head, (unsigned)hrem);
    if (blen > boff)
        b[nb++] = uv_buf_init(body + boff, (unsigned)(blen - boff));
    rc = uv_write(&w->req, s, b, nb, on_write);
    if (rc < 0) {
        free(w);
        conn_close(c);
        goto drop;
    }
    if (c->wq_reqs++ == 0)
        c->t_write_progress = conn_now(c);
    c->wq_bytes += w->len;
    c->wq_mark = uv_stream_get_write_queue_size(s);
    return;

drop:
    free(body);
}

static const char *
http_date(srv_http_t *h)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t t = time(NULL);
    struct tm tm;

    if (t != h->date_sec && gmtime_r(&t, &tm) != NULL) {
        h->date_sec = t;
        snprintf(h->date, sizeof(h->date),
                 "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                 days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon,
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    return h->date;
}

static const char *
reason(int status)
{
    const char *s = http_status_str((enum http_status)status);

    return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}

static int
ctype_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i >= CTYPE_MAX || (unsigned char)s[i] < 0x20
            || (unsigned char)s[i] > 0x7e)
            return 0;
    return i > 0;
}

/* Connection header of a response. */
enum { CONN_HDR_NONE, CONN_HDR_CLOSE, CONN_HDR_KEEP };

/*
 * Format and send one response; body is owned (freed here).  HEAD, 204 and
 * 304 responses carry no body.
 */
static void
conn_respond(conn_t *c, int status, const char *ctype, char *body,
             size_t blen, int conn_hdr, int is_head)
{
    srv_http_t *h = c->h;
    char head[HEAD_MAX];
    int n, no_length = status == 204 || status == 304;

    if (status >= 500)
        h->counters.responses_5xx++;
    else if (status >= 400)
        h->counters.responses_4xx++;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n",
                 status, reason(status), http_date(h), ctype);
    if (!no_length)
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n",
                  conn_hdr == CONN_HDR_CLOSE ? "Connection: close\r\n"
                  : conn_hdr == CONN_HDR_KEEP ? "Connection: keep-alive\r\n"
                  : "");
    if (is_head || no_length) {
        free(body);
        body = NULL;
        blen = 0;
    }
    conn_send(c, head, (size_t)n, body, blen);
}

/* Answer a protocol error ourselves, then close. */
static void
conn_error(conn_t *c, int status, const char *msg)
{
    char *body;
    int n;

    if (c->state != CS_OPEN)
        return;
    c->state = CS_CLOSING;
    n = snprintf(NULL, 0, "{\"error\":\"%s\"}", msg);
    body = malloc((size_t)n + 1);
    if (body == NULL) {
        conn_close(c);
        return;
    }
    snprintf(body, (size_t)n + 1, "{\"error\":\"%s\"}", msg);
    conn_respond(c, status, "application/json", body, (size_t)n,
                 CONN_HDR_CLOSE, 0);
}

/* A complete request: run the handler and send its response. */
static void
conn_dispatch(conn_t *c)
{
    srv_http_t *h = c->h;
    reqp_t *r = &c->rp;
    srv_request_t req;
    srv_response_t resp = { 200, NULL, NULL, 0, 0 };
    const char *ctype = "application/json";
    int keep = r->keep_alive && !h->stopping
               && h->lim.keepalive_timeout_ms != 0;
    int status;

    req.method = http_method_str((enum http_method)r->hp.method);
    req.path = r->buf + r->path_off;
    req.query = r->buf + r->query_off;
    req.body = r->buf + r->body_off;
    req.body_len = r->body_len;
    req.keep_alive = keep;
    h->counters.requests++;
    h->fn(h->ctx, &req, &resp);
    keep = keep && !resp.close && !h->stopping;
    status = resp.status;
    if (status < 200 || status > 599) {
        free(resp.body);
        resp.body = NULL;
        resp.body_len = 0;
        status = 500;
    }
    if (resp.body == NULL)
        resp.body_len = 0;
    if (resp.content_type != NULL && ctype_ok(resp.content_type))
        ctype = resp.content_type;
    if (!keep)
        c->state = CS_CLOSING;
    c->t_idle = conn_now(c);
    conn_respond(c, status, ctype, resp.body, resp.body_len,
                 !keep ? CONN_HDR_CLOSE
                 : r->minor == 0 ? CONN_HDR_KEEP : CONN_HDR_NONE,
                 r->is_head);
    reqp_reset(r);
}

/* Parse and answer every complete request in p[0..n), in order. */
static void
conn_feed(conn_t *c, const char *p, size_t n)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    while (n > 0 && c->state == CS_OPEN) {
        size_t used = 0;
        int rc;

        if (!c->rp.started)
            c->t_req_start = conn_now(c);
        rc = reqp_feed(&c->rp, p, n, &used);
        if (rc < 0) {
            conn_error(c, c->rp.err_status, c->rp.err_msg);
            return;
        }
        p += used;
        n -= used;
        if (rc == 0) {
            if (c->rp.expect_continue == 1 && c->rp.headers_done) {
                c->rp.expect_continue = 2;
                conn_send(c, cont, sizeof(cont) - 1, NULL, 0);
            }
            return;
        }
        conn_dispatch(c);
    }
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->handle->data;

    if (status < 0 && c->state != CS_CLOSED)
        conn_close(c);
}

/* The write queue just became empty. */
static void
conn_flushed(conn_t *c)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;

    c->wq_mark = 0;
    if (c->state == CS_CLOSING) {
        /*
         * No lingering once the peer sent EOF.  While stopping too: a
         * close with unread input sends RST, which can destroy the last
         * response before the client reads it (a failed request in a
         * SIGHUP reload); LINGER_MS bounds the wait.
         */
        if (c->eof || uv_shutdown(&c->sreq, s, on_shutdown) < 0) {
            conn_close(c);
            return;
        }
        c->state = CS_LINGER;
        c->t_linger = conn_now(c);
    } else if (c->state == CS_OPEN) {
        c->t_idle = conn_now(c);
    } else {
        return;
    }
    if (c->read_paused) {
        c->read_paused = 0;
        if (!c->reading && !c->eof) {
            /*
             * The callbacks again: libuv >= 1.38 refuses NULL ones with
             * UV_EINVAL, which left a paused connection deaf for good
             * (pipelined requests unanswered, the peer's close unseen
             * until the keep-alive timeout).  Found by fuzz_http.
             * A failure here is seen at the next timer or write.
             */
            if (uv_read_start(s, on_alloc, on_read) == 0)
                c->reading = 1;
        }
    }
    conn_timer_update(c);
}

/* Has the write queue stalled for write_timeout_ms? */
static int
write_stalled(conn_t *c, uint64_t now)
{
    size_t q;

    if (now < c->t_write_progress + c->h->lim.write_timeout_ms)
        return 0;
    q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (q < c->wq_mark) {               /* partial progress */
        c->wq_mark = q;
        c->t_write_progress = now;
        return 0;
    }
    return 1;
}

/*
 * When an idle open connection is closed: keepalive_timeout_ms after its
 * last response (header_timeout_ms for a first request when keep-alive
 * is off); once stopping, at most STOP_IDLE_MS after srv_http_stop(), so
 * that a request already on its way is still answered (with "Connection:
 * close") instead of meeting a closed socket.
 */
static uint64_t
idle_deadline(const conn_t *c)
{
    const srv_http_t *h = c->h;
    uint64_t d = c->t_idle + (h->lim.keepalive_timeout_ms == 0
                              ? h->lim.header_timeout_ms
                              : h->lim.keepalive_timeout_ms);

    if (h->stopping)
        d = SMALLER(d, h->t_stop + STOP_IDLE_MS);
    return d;
}

static void
on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    const srv_http_limits_t *l = &c->h->lim;
    uint64_t now = conn_now(c), d;

    c->deadline = 0;
    switch (c->state) {
    case CS_LINGER:
        conn_close(c);
        return;
    case CS_CLOSING:
        if (write_stalled(c, now)) {
            c->h->counters.timeouts++;
            conn_close(c);
            return;
        }
        break;
    case CS_OPEN:
        if (c->wq_reqs > 0 && write_stalled(c, now)) {
            c->h->counters.timeouts++;
            conn_close(c);
            return;
        }
        if (c->rp.started && !c->read_paused) {
            d = c->rp.headers_done ? c->t_last_read : c->t_req_start;
            if (now >= d + l->header_timeout_ms) {
                c->h->counters.timeouts++;
                conn_error(c, 408, "request timeout");
                break;
            }
        } else if (!c->rp.started && c->wq_reqs == 0
                   && now >= idle_deadline(c)) {
            conn_close(c);
            return;
        }
        break;
    default:
        return;
    }
    conn_timer_update(c);
}

/*
 * Arm the timer for the nearest deadline of the current state:
 *   open, idle:            idle_deadline() (close quietly)
 *   open, in a head:       t_req_start + header_timeout_ms (408)
 *   open, in a body:       t_last_read + header_timeout_ms (408)
 *   writes queued:         t_write_progress + write_timeout_ms (close)
 *   lingering:             t_linger + LINGER_MS (close)
 */
static void
conn_timer_update(conn_t *c)
{
    const srv_http_limits_t *l = &c->h->lim;
    uint64_t now = conn_now(c), d = UINT64_MAX;

    switch (c->state) {
    case CS_LINGER:
        d = c->t_linger + LINGER_MS;
        break;
    case CS_CLOSING:
        d = c->t_write_progress + l->write_timeout_ms;
        break;
    case CS_OPEN:
        if (c->wq_reqs > 0)
            d = c->t_write_progress + l->write_timeout_ms;
        if (c->rp.started && !c->read_paused)
            d = SMALLER(d, (c->rp.headers_done ? c->t_last_read
                            : c->t_req_start) + l->header_timeout_ms);
        else if (!c->rp.started && c->wq_reqs == 0)
            d = idle_deadline(c);
        break;
    default:
        return;
    }
    if (d == c->deadline)
        return;
    c->deadline = d;
    if (d == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

static void
on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = handle->data;

    (void)suggested;
    *buf = uv_buf_init(c->h->rbuf, RBUF_SIZE);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    srv_http_t *h = c->h;

    if (c->state == CS_CLOSED || nread == 0)
        return;
    if (nread < 0) {
        c->reading = 0;
        if (nread != UV_EOF || c->state == CS_LINGER || c->wq_reqs == 0) {
            conn_close(c);
            return;
        }
        uv_read_stop(s);
        c->eof = 1;
        c->state = CS_CLOSING;          /* flush, then close */
        conn_timer_update(c);
        return;
    }
    if (c->state != CS_OPEN)            /* closing or lingering: discard */
        return;
    c->t_last_read = conn_now(c);
    conn_feed(c, buf->base, (size_t)nread);
    if (c->state == CS_OPEN && c->reading
        && c->wq_bytes > h->lim.max_write_queue_bytes) {
        uv_read_stop(s);
        c->reading = 0;
        c->read_paused = 1;
    }
    conn_timer_update(c);
}

/*
 * Turning a connection away
 *
 * libuv accepts a new connection itself and hands it over with
 * on_connection(); until the callback takes it with uv_accept(), libuv
 * stops polling the listener.  So a connection the worker cannot serve
 * (over max_connections, or no memory for it) must still be accepted, or
 * the worker never accepts again.  It is accepted into h->spare, which
 * needs no allocation, answered 503 if the socket takes it at once, and
 * closed.  While spare is still closing, the next one waits (libuv holds
 * it, and the listener, until then) and on_spare_close() takes it.
 */
enum { TURN_NONE, TURN_BUSY, TURN_NOMEM };

static void on_spare_close(uv_handle_t *handle);

static void
turn_away(srv_http_t *h, int why)
{
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\nContent-Length: 32\r\n"
        "Connection: close\r\n\r\n{\"error\":\"too many connections\"}";
    static const char nomem[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\nContent-Length: 25\r\n"
        "Connection: close\r\n\r\n{\"error\":\"out of memory\"}";
    uv_buf_t b = why == TURN_BUSY
                 ? uv_buf_init((char *)busy, sizeof(busy) - 1)
                 : uv_buf_init((char *)nomem, sizeof(nomem) - 1);

    if (h->spare_busy) {
        h->spare_next = (unsigned char)why;
        return;
    }
    /* Cannot fail for a handle without a socket of its own. */
    if (uv_tcp_init(h->loop, &h->spare) < 0)
        return;
    h->spare_busy = 1;
    h->spare.data = h;
    if (uv_accept((uv_stream_t *)&h->server, (uv_stream_t *)&h->spare)
        == 0) {
        if (why == TURN_BUSY)
            h->counters.conn_rejected++;
        h->counters.responses_5xx++;
        (void)uv_try_write((uv_stream_t *)&h->spare, &b, 1);
    }
    uv_close((uv_handle_t *)&h->spare, on_spare_close);
}

static void
on_spare_close(uv_handle_t *handle)
{
    srv_http_t *h = handle->data;
    int next = h->spare_next;

    h->spare_busy = 0;
    h->spare_next = TURN_NONE;
    if (next != TURN_NONE && !h->stopping)
        turn_away(h, next);
    maybe_done(h);
}

static void
on_connection(uv_stream_t *server, int status)
{
    srv_http_t *h = server->data;
    conn_t *c;

    if (status < 0 || h->stopping)
        return;
    if (h->nconns >= h->lim.max_connections) {
        turn_away(h, TURN_BUSY);
        return;
    }
    if (h->fail_conns > 0) {
        h->fail_conns--;
        c = NULL;
    } else {
        c = calloc(1, sizeof(*c));
    }
    if (c == NULL) {
        turn_away(h, TURN_NOMEM);
        return;
    }
    if (uv_tcp_init(h->loop, &c->tcp) < 0) {
        free(c);
        turn_away(h, TURN_NOMEM);
        return;
    }
    c->h = h;
    c->tcp.data = c;
    c->timer.data = c;
    reqp_init(&c->rp, &h->lim);
    c->handles = 1;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_timer_init(h->loop, &c->timer) < 0) {
        c->state = CS_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
        turn_away(h, TURN_NOMEM);
        return;
    }
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    h->counters.connections++;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
    c->t_idle = conn_now(c);
    conn_timer_update(c);
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

void
srv_http_limits_default(srv_http_limits_t *l)
{
    l->max_header_bytes = 8192;
    l->max_url_bytes = 4096;
    l->max_body_bytes = 1024 * 1024;
    l->header_timeout_ms = 10000;
    l->keepalive_timeout_ms = 5000;
    l->max_connections = 1000;
    l->write_timeout_ms = 10000;
    l->max_write_queue_bytes = 256 * 1024;
}

/* Copy lim into out, clamped to what the code can hold; -EINVAL for a 0
 * where 0 has no meaning (http.h). */
static int
limits_check(srv_http_limits_t *out, const srv_http_limits_t *lim)
{
    if (lim == NULL) {
        srv_http_limits_default(out);
        return 0;
    }
    if (lim->max_header_bytes == 0 || lim->max_url_bytes == 0
        || lim->header_timeout_ms == 0 || lim->max_connections == 0
        || lim->write_timeout_ms == 0)
        return -EINVAL;
    *out = *lim;
    if (out->max_url_bytes > MAX_URL_CAP)
        out->max_url_bytes = MAX_URL_CAP;
    if (out->max_body_bytes > MAX_BODY_CAP)
        out->max_body_bytes = MAX_BODY_CAP;
    return 0;
}

static void
on_start_fail_close(uv_handle_t *handle)
{
    srv_http_t *h = handle->data;

    free(h->rbuf);
    free(h);
}

int
srv_http_start(uv_loop_t *loop, int listen_fd, const srv_http_limits_t *lim,
               srv_handler_fn fn, void *ctx, srv_http_t **out)
{
    srv_http_t *h;
    int fd, rc;

    if (loop == NULL || listen_fd < 0 || fn == NULL || out == NULL)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    if ((rc = limits_check(&h->lim, lim)) < 0) {
        free(h);
        return rc;
    }
    h->rbuf = malloc(RBUF_SIZE);
    if (h->rbuf == NULL) {
        rc = -ENOMEM;
        goto error;
    }
    h->loop = loop;
    h->fn = fn;
    h->ctx = ctx;
    /* The parser's own limit is process-wide; ours is checked first. */
    if (h->lim.max_header_bytes >= HTTP_MAX_HEADER_SIZE)
        http_parser_set_max_header_size(
            (uint32_t)SMALLER(h->lim.max_header_bytes + 1, UINT32_MAX));
    fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto error;
    }
    rc = uv_tcp_init(loop, &h->server);
    if (rc < 0) {
        close(fd);
        goto error;
    }
    h->server.data = h;
    rc = uv_tcp_open(&h->server, fd);
    if (rc < 0)
        close(fd);
    else
        rc = uv_listen((uv_stream_t *)&h->server, SOMAXCONN, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&h->server, on_start_fail_close);
        return rc;
    }
    *out = h;
    return 0;

error:
    free(h->rbuf);
    free(h);
    return rc;
}

static void
on_server_close(uv_handle_t *handle)
{
    srv_http_t *h = handle->data;

    h->server_closed = 1;
    maybe_done(h);
}

void
srv_http_stop(srv_http_t *h, void (*done_cb)(void *arg), void *arg)
{
    conn_t *c, *next;

    if (h == NULL || h->stopping)
        return;
    h->stopping = 1;
    h->t_stop = uv_now(h->loop);
    h->done_cb = done_cb;
    h->done_arg = arg;
    uv_close((uv_handle_t *)&h->server, on_server_close);
    for (c = h->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CS_LINGER) {
            conn_close(c);
        } else if (c->state == CS_OPEN && !c->rp.started) {
            /*
             * Idle (or its last response still being written): closing
             * it now lost any request the client had already sent, which
             * was every SIGHUP reload's share of failed requests under
             * load.  It gets STOP_IDLE_MS (idle_deadline()) for one more
             * request, answered with "Connection: close".
             */
            conn_timer_update(c);
        }
        /* Mid-request: its response says "Connection: close". */
    }
}

void
srv_http_free(srv_http_t *h)
{
    if (h == NULL)
        return;
    free(h->rbuf);
    free(h);
}

const srv_http_counters_t *
srv_http_counters(const srv_http_t *h)
{
    return &h->counters;
}

size_t
srv_http_active_connections(const srv_http_t *h)
{
    return h->nconns;
}

void
srv_http_fail_next_conns(srv_http_t *h, unsigned n)
{
    h->fail_conns = n;
}
