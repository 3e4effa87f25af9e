/*
 * fuzz_http.c -- libFuzzer target for the worker's request path: bytes a
 * client sends, through server/http.c and http_parse.c (strict head and
 * chunk scanners, http_parser, limits, dispatch, response writing,
 * pause/resume of reads, lingering close, graceful stop, the connection
 * limit) into the real workload handler on a small heap (the embedded
 * webapp's heap, wl_build at scale FZ_SCALE, with lighter routes: see
 * FZ_ROUTES), and back out as responses.  A collection ends every input (a full one if objects were
 * left), so that the cyclic garbage a request leaves does not look like a
 * leak to libFuzzer, which runs LeakSanitizer after every input that
 * mallocs more than it frees: that would cost ~30 ms an input.
 *
 * http.c is included rather than linked so that the harness can reach
 * its state (the connection list, the limits, the counters); the parser
 * (http_parse.c) is linked.  The server
 * is the real one, started with srv_http_start() on a Unix-domain
 * listening socket (libuv treats it as a TCP socket it was handed: only
 * TCP_NODELAY fails, and that failure is ignored); the client is a
 * non-blocking socket in this process, and the loop runs with
 * UV_RUN_NOWAIT between client steps, so no input depends on timing and
 * no timer ever fires (all timeouts are set to minutes).
 *
 * Input: byte 0 = options (bits below), byte 1 = seed of the chunking,
 * the rest = the bytes the client sends.
 *
 * Oracles (any violation abort()s, which libFuzzer reports as a crash):
 *   - the server's output is a sequence of complete, well-formed
 *     responses: "HTTP/1.1 NNN reason" (100, or 200..599), headers, one
 *     Content-Length that matches the body (HEAD: no body; 204 and 304:
 *     neither), nothing after "Connection: close";
 *   - no more final responses than request lines ("HTTP/" in the input)
 *     plus one error response;
 *   - the handler sees a path starting with '/' (or "*", OPTIONS's
 *     asterisk-form), a NUL after the body;
 *   - once the client has closed, the server closes the connection
 *     without waiting for any timer (a connection that stopped reading
 *     for good would only go at its keep-alive timeout);
 *   - after srv_http_stop() the server reports done.
 * ASan/UBSan/LSan see everything else.
 */
#include "../../server/http.c"

#include <signal.h>
#include <stddef.h>
#include <sys/un.h>

#include "gc.h"
#include "workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    OPT_SMALL_LIMITS = 1 << 0,  /* 512 B head, 64 B URL, 256 B body */
    OPT_SMALL_BUFS = 1 << 1,    /* small socket buffers, 2 KiB queue cap */
    OPT_READER = 1 << 2,        /* the client reads while it sends */
    OPT_HALF_CLOSE = 1 << 3,    /* shutdown(SHUT_WR) after the input */
    OPT_CHUNK_SHIFT = 4,        /* 2 bits: how the input is split */
    OPT_STOP = 1 << 6,          /* srv_http_stop() half way through */
    OPT_REJECT = 1 << 7         /* max_connections 1, a second client */
};

#define FZ_MAX_INPUT    (64 * 1024)
#define FZ_SCALE        0.002   /* ~2000 objects: collections stay cheap */
#define FZ_SETTLE       8       /* idle loop turns that mean "settled" */
#define FZ_MAX_TURNS    20000   /* loop turns per phase, at most */

static uv_loop_t fz_loop;
static srv_http_t *fz_h;
static int fz_listen_fd = -1;
static struct sockaddr_un fz_addr;
static socklen_t fz_addrlen;
static rt_heap_t *fz_heap;
static wl_app_t *fz_app;
static size_t fz_objects;       /* live objects after the last input */
static int fz_done;

/* What the client received. */
static char *fz_out;
static size_t fz_out_len, fz_out_cap;

static _Noreturn void
fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    if (fz_out_len > 0)
        fprintf(stderr, "fuzz_http: output (%zu bytes): %.*s\n", fz_out_len,
                (int)SMALLER(fz_out_len, (size_t)2048), fz_out);
    abort();
}

/* ---- the handler: worker.c's routes, with the workload behind them ---- */

/* Query values the harness lets through: no number of 3 digits or more,
 * so that one input cannot ask for 10^8 reads (a cap on query overrides is
 * proposed for workloads/wl_request.c) and inputs stay fast; big responses
 * come from pipelining (/api/items answers ~5 KB). */
static int
fz_query_small(const char *q)
{
    int run = 0;

    for (; *q; q++) {
        run = (*q >= '0' && *q <= '9') ? run + 1 : 0;
        if (run >= 3)
            return 0;
    }
    return 1;
}

static char *
fz_strdup_len(const char *s, size_t *len)
{
    char *p = strdup(s);

    *len = p ? strlen(p) : 0;
    return p;
}

static void
fz_handler(void *ctx, const srv_request_t *req, srv_response_t *resp)
{
    (void)ctx;
    if (req->method == NULL || req->path == NULL || req->query == NULL
        || req->body == NULL)
        fz_fail("handler: NULL field in the request");
    if (req->path[0] != '/' && strcmp(req->path, "*") != 0)
        fz_fail("handler: path is neither \"/...\" nor \"*\"");
    if (req->body[req->body_len] != '\0')
        fz_fail("handler: body not NUL-terminated");
    if (req->body_len > fz_h->lim.max_body_bytes)
        fz_fail("handler: body over the limit");
    if (strcmp(req->path, "/healthz") == 0) {
        resp->body = fz_strdup_len("{\"status\":\"ok\"}", &resp->body_len);
    } else if (strcmp(req->path, "/close") == 0) {
        resp->close = 1;
        resp->body = fz_strdup_len("{}", &resp->body_len);
    } else if (strcmp(req->path, "/status") == 0) {
        /* the http layer must map a bad status to 500 */
        resp->status = atoi(req->query);
        resp->content_type = req->body_len ? req->body : NULL;
        resp->body = fz_strdup_len("{}", &resp->body_len);
    } else if (!fz_query_small(req->query)
               || strstr(req->query, "retain_max") != NULL) {
        /* (a cache that grows and shrinks would look like a leak) */
        resp->status = 400;
        resp->body = fz_strdup_len("{\"error\":\"harness: big query\"}",
                                   &resp->body_len);
    } else {
        wl_result_t res;

        memset(&res, 0, sizeof res);
        wl_handle(fz_app, req->path, req->query, &res);
        resp->status = res.status ? res.status : 500;
        resp->body = res.body;
        resp->body_len = res.body_len;
    }
}

/* ---- setup ------------------------------------------------------------ */

/*
 * The webapp's four routes with the same shapes but fewer objects per
 * request, and caches that fill after a few requests: the fuzzer spends
 * its time in the HTTP layer, and memory stays flat.
 */
#define FZ_ROUTES "[" \
    "{\"path\": \"/\", \"reads\": 40, \"spread\": 0.25, \"hot\": 0.8," \
    " \"walk_depth\": 2, \"walk_width\": 4, \"temporaries\": 20," \
    " \"cyclic_garbage\": 2, \"retain_max\": 20, \"response_items\": 20}," \
    "{\"path\": \"/api/items\", \"reads\": 60, \"walk_depth\": 1," \
    " \"temporaries\": 30, \"retain\": 2, \"retain_max\": 40," \
    " \"response_items\": 100}," \
    "{\"path\": \"/api/user\", \"reads\": 10, \"spread\": 0.5," \
    " \"offset\": 0.25, \"temporaries\": 10, \"cyclic_garbage\": 3," \
    " \"retain\": 1, \"retain_max\": 20, \"response_items\": 10}," \
    "{\"path\": \"/static\", \"reads\": 5, \"spread\": 0.01, \"hot\": 1.0," \
    " \"walk_depth\": 0, \"walk_width\": 0, \"retain_max\": 20," \
    " \"response_items\": 1}]"

/* The embedded webapp with FZ_ROUTES as its routes. */
static wl_spec_t *
fz_spec(void)
{
    json_t *root = json_loads(wl_default_json(), 0, NULL);
    json_t *routes = json_loads(FZ_ROUTES, 0, NULL);
    wl_spec_t *spec = NULL;
    char err[512], *text;

    if (root == NULL || routes == NULL
        || json_object_set_new(root, "routes", routes) < 0
        || (text = json_dumps(root, 0)) == NULL)
        fz_fail("cannot make the workload");
    if (wl_load_string(text, "fuzz_http", &spec, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        fz_fail("cannot load the workload");
    }
    free(text);
    json_decref(root);
    return spec;
}

static void
fz_start_server(void)
{
    if (srv_http_start(&fz_loop, fz_listen_fd, NULL, fz_handler, NULL,
                       &fz_h) < 0)
        fz_fail("srv_http_start failed");
    fz_done = 0;
}

static void
fz_init(void)
{
    static int done;
    wl_spec_t *spec;

    if (done)
        return;
    done = 1;
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&fz_loop) != 0)
        fz_fail("uv_loop_init");
    /* An abstract Unix socket, unique to this process. */
    memset(&fz_addr, 0, sizeof fz_addr);
    fz_addr.sun_family = AF_UNIX;
    snprintf(fz_addr.sun_path + 1, sizeof fz_addr.sun_path - 1,
             "cowlab-fuzz-http-%ld", (long)getpid());
    fz_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1
                             + strlen(fz_addr.sun_path + 1));
    fz_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fz_listen_fd < 0
        || bind(fz_listen_fd, (struct sockaddr *)&fz_addr, fz_addrlen) < 0
        || listen(fz_listen_fd, 16) < 0)
        fz_fail("cannot listen on a Unix socket");
    fz_start_server();
    fz_heap = rt_heap_new();
    spec = fz_spec();
    if (fz_heap == NULL
        || wl_build(fz_heap, spec, FZ_SCALE, 42, &fz_app, NULL) < 0)
        fz_fail("cannot build the workload heap");
    wl_spec_free(spec);
}

static void
fz_set_limits(unsigned opts)
{
    srv_http_limits_t *l = &fz_h->lim;

    srv_http_limits_default(l);
    /* No timer may fire while an input runs. */
    l->header_timeout_ms = 600000;
    l->keepalive_timeout_ms = 600000;
    l->write_timeout_ms = 600000;
    if (opts & OPT_SMALL_LIMITS) {
        l->max_header_bytes = 512;
        l->max_url_bytes = 64;
        l->max_body_bytes = 256;
    }
    if (opts & OPT_SMALL_BUFS)
        l->max_write_queue_bytes = 2048;
}

/* ---- the client --------------------------------------------------------- */

static int
fz_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

    if (fd < 0)
        fz_fail("socket");
    if (connect(fd, (struct sockaddr *)&fz_addr, fz_addrlen) < 0)
        fz_fail("connect");
    return fd;
}

static void
fz_turn(void)
{
    uv_run(&fz_loop, UV_RUN_NOWAIT);
}

/* Read what is there into fz_out (if keep); 1 if the server closed. */
static int
fz_drain(int fd, int keep, size_t *got)
{
    char buf[16384];
    ssize_t k;

    for (;;) {
        k = read(fd, buf, sizeof buf);
        if (k > 0) {
            *got += (size_t)k;
            if (!keep)
                continue;
            if (fz_out_len + (size_t)k > fz_out_cap) {
                size_t cap = fz_out_cap ? fz_out_cap : 65536;
                char *nb;

                while (cap < fz_out_len + (size_t)k)
                    cap *= 2;
                if ((nb = realloc(fz_out, cap)) == NULL)
                    fz_fail("out of memory");
                fz_out = nb;
                fz_out_cap = cap;
            }
            memcpy(fz_out + fz_out_len, buf, (size_t)k);
            fz_out_len += (size_t)k;
            continue;
        }
        if (k == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return 1;                       /* ECONNRESET and the like */
    }
}

static uint32_t
fz_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* How many bytes the client sends next. */
static size_t
fz_chunk(unsigned opts, uint32_t *rng, const uint8_t *p, size_t left)
{
    size_t n;

    switch ((opts >> OPT_CHUNK_SHIFT) & 3) {
    case 0:
        return left;
    case 1:
        n = 1 + fz_rand(rng) % 16;
        break;
    case 2:
        n = 1 + fz_rand(rng) % 512;
        break;
    default: {                          /* up to and including a '\n' */
        const uint8_t *nl = memchr(p, '\n', left);

        n = nl ? (size_t)(nl - p) + 1 : left;
        break;
    }
    }
    return n < left ? n : left;
}

/* ---- the oracle ------------------------------------------------------- */

/* 100 Continue from the layer itself; final answers 200..599 (the
 * /status route lets the input pick any, and http.c maps the rest to 500). */
static int
fz_status_ok(int st)
{
    return st == 100 || (st >= 200 && st <= 599);
}

static size_t
fz_count(const uint8_t *p, size_t n, const char *pat)
{
    size_t k = strlen(pat), c = 0, i;

    for (i = 0; i + k <= n; i++)
        if (memcmp(p + i, pat, k) == 0)
            c++;
    return c;
}

/*
 * The output must be complete responses.  head_ok: a response may have a
 * Content-Length and no body (the input holds a HEAD request).
 */
static void
fz_check_output(const char *p, size_t n, int head_ok, size_t max_final)
{
    size_t i = 0, finals = 0;
    int closed = 0;

    while (i < n) {
        const char *eoh, *line, *end;
        long clen = -1;
        int st, conn_close = 0;

        if (closed)
            fz_fail("bytes after a \"Connection: close\" response");
        if (n - i < 13 || memcmp(p + i, "HTTP/1.1 ", 9) != 0)
            fz_fail("response does not start with \"HTTP/1.1 \"");
        if (p[i + 9] < '1' || p[i + 9] > '5' || p[i + 10] < '0'
            || p[i + 10] > '9' || p[i + 11] < '0' || p[i + 11] > '9'
            || p[i + 12] != ' ')
            fz_fail("bad status code");
        st = (p[i + 9] - '0') * 100 + (p[i + 10] - '0') * 10
             + (p[i + 11] - '0');
        if (!fz_status_ok(st))
            fz_fail("unexpected status code");
        eoh = memmem(p + i, n - i, "\r\n\r\n", 4);
        if (eoh == NULL)
            fz_fail("truncated response head");
        if ((size_t)(eoh - (p + i)) > HEAD_MAX)
            fz_fail("response head over HEAD_MAX");
        /* header lines: between the status line and the empty line */
        line = memchr(p + i, '\n', (size_t)(eoh - (p + i)) + 2) + 1;
        while (line < eoh + 2) {
            end = memchr(line, '\r', (size_t)(eoh + 2 - line));
            if (end == NULL || end[1] != '\n')
                fz_fail("header line without CRLF");
            if (end - line >= 15 && strncasecmp(line, "Content-Length:", 15)
                                    == 0) {
                if (clen >= 0)
                    fz_fail("two Content-Length headers");
                clen = strtol(line + 15, NULL, 10);
                if (clen < 0)
                    fz_fail("negative Content-Length");
            } else if (end - line == 17
                       && strncasecmp(line, "Connection: close", 17) == 0) {
                conn_close = 1;
            } else if (memchr(line, ':', (size_t)(end - line)) == NULL) {
                fz_fail("header line without ':'");
            }
            line = end + 2;
        }
        i = (size_t)(eoh + 4 - p);
        if (st == 100) {
            if (clen >= 0)
                fz_fail("100 Continue with a Content-Length");
            continue;
        }
        finals++;
        if (st == 204 || st == 304) {   /* no length, no body */
            if (clen >= 0)
                fz_fail("204/304 response with a Content-Length");
            closed = conn_close;
            continue;
        }
        if (clen < 0)
            fz_fail("final response without Content-Length");
        if (head_ok && (i == n || (n - i >= 9
                                   && memcmp(p + i, "HTTP/1.1 ", 9) == 0)))
            ;                           /* a HEAD response: no body */
        else if ((size_t)clen > n - i)
            fz_fail("truncated response body");
        else
            i += (size_t)clen;
        closed = conn_close;
    }
    if (finals > max_final)
        fz_fail("more responses than request lines");
}

/* ---- one input --------------------------------------------------------- */

static void
fz_on_done(void *arg)
{
    (void)arg;
    fz_done = 1;
}

/* A second client while max_connections is 1: 503 and closed, at once. */
static void
fz_rejected_client(void)
{
    static const char want[] = "HTTP/1.1 503 ";
    uint64_t before = fz_h->counters.conn_rejected;
    char buf[512];
    size_t len = 0;
    int fd = fz_connect(), i;
    ssize_t k;

    for (i = 0; i < FZ_MAX_TURNS && fz_h->counters.conn_rejected == before;
         i++)
        fz_turn();
    if (fz_h->counters.conn_rejected == before)
        fz_fail("a connection over max_connections was not rejected");
    while ((k = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)k;
    if (len > 0 && (len < sizeof want - 1
                    || memcmp(buf, want, sizeof want - 1) != 0))
        fz_fail("rejected connection did not get a 503");
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned opts;
    uint32_t rng;
    size_t off = 0, got, stalls = 0, max_final;
    int fd, i, idle, eof = 0, stopped = 0;

    if (size < 2 || size > FZ_MAX_INPUT)
        return 0;
    fz_init();
    opts = data[0];
    rng = (uint32_t)data[1] * 2654435761u | 1u;
    data += 2;
    size -= 2;
    fz_out_len = 0;
    fz_set_limits(opts);
    if (opts & OPT_REJECT)
        fz_h->lim.max_connections = 1;

    fd = fz_connect();
    for (i = 0; i < FZ_MAX_TURNS && fz_h->nconns == 0; i++)
        fz_turn();
    if (fz_h->nconns != 1)
        fz_fail("the server did not accept the connection");
    if (opts & OPT_SMALL_BUFS) {
        int sz = 4096, sfd;

        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        if (uv_fileno((uv_handle_t *)&fz_h->conns->tcp, &sfd) == 0)
            setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    if (opts & OPT_REJECT)
        fz_rejected_client();

    /* Send the input, chunk by chunk, turning the loop after each. */
    while (off < size && !eof) {
        size_t n = fz_chunk(opts, &rng, data + off, size - off);
        ssize_t w = write(fd, data + off, n);

        if (w > 0)
            off += (size_t)w;
        else if (errno == EPIPE || errno == ECONNRESET)
            break;                      /* the server closed: fine */
        fz_turn();
        got = 0;
        if ((opts & OPT_READER) || w <= 0)
            eof = fz_drain(fd, 1, &got);
        if (w <= 0 && got == 0 && ++stalls > 1000)
            break;          /* it stopped reading and has nothing to say */
        if ((opts & OPT_STOP) && !stopped && off >= size / 2) {
            srv_http_stop(fz_h, fz_on_done, NULL);
            stopped = 1;
        }
    }
    if ((opts & OPT_STOP) && !stopped) {
        srv_http_stop(fz_h, fz_on_done, NULL);
        stopped = 1;
    }
    if (opts & OPT_HALF_CLOSE)
        shutdown(fd, SHUT_WR);

    /* Let it settle: read until it closes or nothing moves. */
    for (i = 0, idle = 0; i < FZ_MAX_TURNS && !eof && idle < FZ_SETTLE;
         i++) {
        fz_turn();
        got = 0;
        eof = fz_drain(fd, 1, &got);
        idle = got ? 0 : idle + 1;
    }
    max_final = fz_count(data, size, "HTTP/") + 1;
    fz_check_output(fz_out, fz_out_len,
                    fz_count(data, size, "HEAD") > 0, max_final);

    /* The client goes away: the server must notice without a timer. */
    close(fd);
    for (i = 0; i < FZ_MAX_TURNS && fz_h->nconns > 0; i++)
        fz_turn();
    if (fz_h->nconns != 0)
        fz_fail("connection still open after the client closed");
    if (stopped) {
        for (i = 0; i < FZ_MAX_TURNS && !fz_done; i++)
            fz_turn();
        if (!fz_done)
            fz_fail("srv_http_stop() never called back");
        srv_http_free(fz_h);
        fz_h = NULL;
        fz_start_server();
    }
    /* The input's cyclic garbage: young, or (rarely) promoted. */
    gc_collect(1);
    if (rt_heap_objects(fz_heap) > fz_objects)
        gc_collect(2);
    fz_objects = rt_heap_objects(fz_heap);
    return 0;
}
