/*
 * http.c -- the worker's HTTP/1.1 server on libuv and libhttp-parser.
 * Accepts on an inherited listening socket, parses requests (keep-alive,
 * pipelining, chunked bodies), calls the handler synchronously from the read
 * callback and writes its response; answers protocol errors, limits and
 * timeouts itself with a small JSON body, then closes.
 * Read "Request framing" first (why two parsers read every head), then
 * "Connection states", then conn_feed().  API: http.h.
 */
#include "http.h"
#include "ascii.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#define RBUF_SIZE       (64 * 1024)     /* shared read buffer, per server */
#define REQBUF_MIN      1024            /* first per-connection buffer */
#define REQBUF_KEEP     (64 * 1024)     /* larger buffers are freed when a
                                         * request is done */
#define LINGER_MS       2000            /* discard input after the last
                                         * response, at most this long */
#define STOP_IDLE_MS    1000            /* after srv_http_stop(): how long
                                         * an idle keep-alive connection
                                         * waits for a request on its way */
#define HEAD_MAX        512             /* our response heads */
#define CTYPE_MAX       128
#define MAX_URL_CAP     65535           /* http_parser_url offsets: u16 */
#define MAX_BODY_CAP    ((size_t)1 << 40)

#define SMALLER(a, b)   ((a) < (b) ? (a) : (b))

/*
 * Request framing
 *
 * The shared libhttp-parser is built non-strict (HTTP_PARSER_STRICT=0): it
 * rejects a malformed method, a bad version number, a second Content-Length
 * (even with the same value), Content-Length together with
 * Transfer-Encoding, a bad Content-Length value, a non-chunked final
 * Transfer-Encoding and most bare CRs inside header lines.  But it accepts:
 * "\r\n\r\r\n" as the end of the head, any two bytes after chunk data where
 * CRLF belongs, "HTTX/1.1" as a version, "Content-Length :" (space before
 * the colon, still read as Content-Length), obs-folded lines, several
 * spaces in the request line, control bytes in the target, HTTP/0.9
 * request lines, and bare LF line ends.  Each of those is a
 * request-smuggling lever (CVE-2023-30589 is the bare-CR one).
 *
 * So every byte of the head and of chunked framing first goes through a
 * strict scanner written to RFC 9112 (head_scan(), chunk_scan()), which
 * also finds where the head and the message end, counts the framing headers
 * and enforces the byte limits.  Only bytes the scanner accepted are then
 * given to http_parser, which supplies method, URL, keep-alive and the
 * decoded body.  Both must agree on where each message ends (the parser is
 * paused in on_message_complete); any disagreement is a 400.
 *
 * Added on top of http_parser: CR must be followed by LF and LF preceded by
 * CR everywhere in the head and chunk framing; request line is exactly
 * token SP visible-target SP "HTTP/" DIGIT "." DIGIT; field names are
 * tokens directly followed by ':'; values hold no control bytes; no
 * obs-fold; at most one Content-Length, Transfer-Encoding and Host;
 * Transfer-Encoding must be exactly "chunked" and never in HTTP/1.0;
 * chunk lines are hex [BWS ";" ext] CRLF; CONNECT is refused; Upgrade is
 * ignored (we never switch protocols; http_parser releases before 2.9.3
 * skipped the body of such a request, handing it back as a new request).
 * Well-formed versions other than 1.x get 505.
 */

/* head_scan() states: where in the request head the next byte falls. */
enum {
    HS_START,           /* before the method; empty CRLF lines skipped */
    HS_START_LF,        /* CR of such an empty line seen */
    HS_METHOD,          /* token */
    HS_TARGET,          /* after one SP: visible ASCII up to one SP */
    HS_VERSION,         /* "HTTP/" DIGIT "." DIGIT, then CR */
    HS_RL_LF,           /* LF ending the request line */
    HS_FIELD_START,     /* a field name, or CR of the empty line */
    HS_FIELD,           /* token, up to ':' */
    HS_VALUE,           /* OWS, field-vchar, SP, HTAB, up to CR */
    HS_VALUE_LF,
    HS_END_LF,          /* LF of the empty line: head done */
    HS_DONE
};

/* chunk_scan() states, for a body sent with Transfer-Encoding: chunked. */
enum {
    CS_SIZE_START,      /* first hex digit of a chunk size */
    CS_SIZE,            /* more hex digits, ';', BWS or CR */
    CS_SIZE_WS,         /* BWS between size and ';' */
    CS_EXT,             /* chunk extension: ignored, up to CR */
    CS_SIZE_LF,
    CS_DATA,            /* chunk_left bytes of data, skipped in bulk */
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TR_START,        /* trailer field name, or CR of the final line */
    CS_TR_FIELD,
    CS_TR_VALUE,
    CS_TR_VALUE_LF,
    CS_END_LF,
    CS_DONE
};

/* Which part of a message reqp_feed() expects next. */
enum { RP_HEAD, RP_BODY, RP_CHUNKED };

/* Framing-relevant headers counted by head_scan(). */
enum { HK_OTHER, HK_CONTENT_LENGTH, HK_TRANSFER_ENCODING, HK_HOST,
       HK_EXPECT };

/*
 * One connection's request parser: the http_parser adapter plus the strict
 * scanners and the message being assembled.
 *
 * buf holds, for the current request only:
 *   [0, url_len)            request target as received
 *   path_off                path, NUL-terminated
 *   query_off               query, NUL-terminated ("" if none)
 *   [body_off, len)         decoded body, NUL after it
 * It is kept across requests (and freed if it grew past REQBUF_KEEP).
 */
typedef struct reqp {
    http_parser hp;
    const srv_http_limits_t *lim;
    unsigned char phase;        /* RP_* */
    unsigned char hs;           /* HS_* */
    unsigned char cs;           /* CS_* */
    unsigned char hkind;        /* HK_* of the header being scanned */
    unsigned char vidx;         /* position inside "HTTP/x.y" */
    unsigned char major, minor;
    unsigned char started;      /* a byte of this message was consumed */
    unsigned char headers_done; /* parser ran on_headers_complete */
    unsigned char complete;     /* parser ran on_message_complete */
    unsigned char chunked;
    unsigned char keep_alive;
    unsigned char is_head;
    unsigned char expect_continue;  /* 1: send 100 Continue, 2: sent */
    unsigned n_cl, n_te, n_host;
    unsigned name_len, val_len;
    char name[24];              /* lowercased field name (prefix) */
    char val[24];               /* value of a framing header (prefix) */
    size_t head_bytes, target_len;
    uint64_t cl_value;          /* our own reading of Content-Length */
    uint64_t body_left;         /* RP_BODY: bytes still to come */
    uint64_t chunk_size, chunk_left, chunk_total;
    size_t frame_bytes;         /* chunk line or trailer section bytes */
    int err_status;             /* nonzero: reject with this status */
    const char *err_msg;
    char *buf;
    size_t len, cap;
    size_t url_len, path_off, query_off, body_off, body_len;
} reqp_t;

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
};

/* ------------------------------------------------------------------ */
/* Character classes (RFC 9110 5.6.2, 5.5)                             */

static int
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP or HTAB: anything in a value but CTLs and DEL. */
static int
is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* ------------------------------------------------------------------ */
/* Request parser: strict scanners + http_parser adapter               */

static int
fail(reqp_t *r, int status, const char *msg)
{
    if (r->err_status == 0) {
        r->err_status = status;
        r->err_msg = msg;
    }
    return -1;
}

static int
reqp_reserve(reqp_t *r, size_t extra)
{
    size_t need = r->len + extra, cap;
    char *nb;

    if (need <= r->cap)
        return 0;
    cap = r->cap ? r->cap : REQBUF_MIN;
    while (cap < need)
        cap *= 2;
    nb = realloc(r->buf, cap);
    if (nb == NULL)
        return fail(r, 500, "out of memory");
    r->buf = nb;
    r->cap = cap;
    return 0;
}

static int
reqp_append(reqp_t *r, const char *p, size_t n)
{
    if (reqp_reserve(r, n + 1) < 0)
        return -1;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

/* Start a new message; keeps buf unless it grew large. */
static void
reqp_reset(reqp_t *r)
{
    char *buf = r->buf;
    size_t cap = r->cap;
    const srv_http_limits_t *lim = r->lim;

    if (cap > REQBUF_KEEP) {
        free(buf);
        buf = NULL;
        cap = 0;
    }
    memset(r, 0, sizeof(*r));
    r->lim = lim;
    r->buf = buf;
    r->cap = cap;
    r->hp.data = r;
    http_parser_init(&r->hp, HTTP_REQUEST);
}

static void
reqp_fini(reqp_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/* A field name ended at ':': is it one of the framing headers? */
static void
header_name_done(reqp_t *r)
{
    static const struct { const char *name; unsigned char kind; } tab[] = {
        { "content-length", HK_CONTENT_LENGTH },
        { "transfer-encoding", HK_TRANSFER_ENCODING },
        { "host", HK_HOST },
        { "expect", HK_EXPECT },
    };
    size_t i;

    r->hkind = HK_OTHER;
    r->val_len = 0;
    if (r->name_len >= sizeof(r->name))
        return;
    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strlen(tab[i].name) == r->name_len
            && memcmp(tab[i].name, r->name, r->name_len) == 0) {
            r->hkind = tab[i].kind;
            return;
        }
    }
}

/* The value of a framing header ended at CRLF: count and check it. */
static int
header_value_done(reqp_t *r)
{
    unsigned n = r->val_len, i;

    if (r->hkind == HK_OTHER)
        return 0;
    if (n > sizeof(r->val))
        n = sizeof(r->val) + 1;         /* too long for any value we take */
    while (n > 0 && n <= sizeof(r->val)
           && (r->val[n - 1] == ' ' || r->val[n - 1] == '\t'))
        n--;
    switch (r->hkind) {
    case HK_CONTENT_LENGTH:
        if (++r->n_cl > 1)
            return fail(r, 400, "duplicate content-length");
        if (n == 0 || n > 18)
            return fail(r, 400, "bad content-length");
        r->cl_value = 0;
        for (i = 0; i < n; i++) {
            if (r->val[i] < '0' || r->val[i] > '9')
                return fail(r, 400, "bad content-length");
            r->cl_value = r->cl_value * 10 + (uint64_t)(r->val[i] - '0');
        }
        break;
    case HK_TRANSFER_ENCODING:
        if (++r->n_te > 1)
            return fail(r, 400, "duplicate transfer-encoding");
        if (n != 7 || memcmp(r->val, "chunked", 7) != 0)
            return fail(r, 400, "unsupported transfer-encoding");
        break;
    case HK_HOST:
        if (++r->n_host > 1)
            return fail(r, 400, "duplicate host");
        break;
    case HK_EXPECT:
        if (n == 12 && memcmp(r->val, "100-continue", 12) == 0)
            r->expect_continue = 1;
        break;
    }
    if (r->n_cl && r->n_te)
        return fail(r, 400, "content-length with transfer-encoding");
    return 0;
}

/*
 * Scan head bytes p[0..n).  Returns how many belong to the head (all n
 * unless it ended inside); *done is set when the empty line was consumed.
 * On error returns 0 with r->err_status set.
 */
static size_t
head_scan(reqp_t *r, const char *p, size_t n, int *done)
{
    const srv_http_limits_t *lim = r->lim;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];

        if (++r->head_bytes > lim->max_header_bytes) {
            fail(r, 431, "header too large");
            return 0;
        }
        switch (r->hs) {
        case HS_START:
            if (ch == '\r') {
                r->hs = HS_START_LF;
                break;
            }
            if (!is_tchar(ch))
                goto bad_line;
            r->hs = HS_METHOD;
            break;
        case HS_START_LF:
            if (ch != '\n')
                goto bad_eol;
            r->hs = HS_START;
            break;
        case HS_METHOD:
            if (ch == ' ') {
                r->hs = HS_TARGET;
                break;
            }
            if (!is_tchar(ch))
                goto bad_line;
            break;
        case HS_TARGET:
            if (ch == ' ' && r->target_len > 0) {
                r->hs = HS_VERSION;
                r->vidx = 0;
                break;
            }
            if (ch < 0x21 || ch > 0x7e)
                goto bad_line;
            if (++r->target_len > lim->max_url_bytes) {
                fail(r, 414, "url too long");
                return 0;
            }
            break;
        case HS_VERSION:
            if (r->vidx < 5) {
                if (ch != (unsigned char)"HTTP/"[r->vidx])
                    goto bad_version;
            } else if (r->vidx == 5 || r->vidx == 7) {
                if (ch < '0' || ch > '9')
                    goto bad_version;
                if (r->vidx == 5)
                    r->major = (unsigned char)(ch - '0');
                else
                    r->minor = (unsigned char)(ch - '0');
            } else if (r->vidx == 6) {
                if (ch != '.')
                    goto bad_version;
            } else {
                if (ch != '\r')
                    goto bad_version;
                r->hs = HS_RL_LF;
                break;
            }
            r->vidx++;
            break;
        case HS_RL_LF:
            if (ch != '\n')
                goto bad_eol;
            r->hs = HS_FIELD_START;
            break;
        case HS_FIELD_START:
            if (ch == '\r') {
                r->hs = HS_END_LF;
                break;
            }
            if (!is_tchar(ch))          /* also obs-fold and bare LF */
                goto bad_header;
            r->hs = HS_FIELD;
            r->name_len = 0;
            /* fall through */
        case HS_FIELD:
            if (ch == ':') {
                header_name_done(r);
                r->hs = HS_VALUE;
                break;
            }
            if (!is_tchar(ch))
                goto bad_header;
            if (r->name_len < sizeof(r->name))
                r->name[r->name_len] = (char)lower(ch);
            r->name_len++;
            break;
        case HS_VALUE:
            if (ch == '\r') {
                r->hs = HS_VALUE_LF;
                break;
            }
            if (!is_value_char(ch))
                goto bad_header;
            if (r->hkind != HK_OTHER
                && !(r->val_len == 0 && (ch == ' ' || ch == '\t'))) {
                if (r->val_len < sizeof(r->val))
                    r->val[r->val_len] = (char)lower(ch);
                if (r->val_len <= sizeof(r->val))
                    r->val_len++;
            }
            break;
        case HS_VALUE_LF:
            if (ch != '\n')
                goto bad_eol;
            if (header_value_done(r) < 0)
                return 0;
            r->hs = HS_FIELD_START;
            break;
        case HS_END_LF:
            if (ch != '\n')
                goto bad_eol;
            r->hs = HS_DONE;
            *done = 1;
            return i + 1;
        default:
            goto bad_line;
        }
    }
    return n;

bad_line:
    fail(r, 400, "bad request line");
    return 0;
bad_version:
    fail(r, 400, "invalid version");
    return 0;
bad_eol:
    fail(r, 400, "bad line ending");
    return 0;
bad_header:
    fail(r, 400, "bad header");
    return 0;
}

/*
 * Scan chunked body bytes p[0..n); like head_scan(), returns the bytes that
 * belong to this message and sets *done after the last CRLF.  Chunk sizes
 * are checked against max_body_bytes before their data arrives.
 */
static size_t
chunk_scan(reqp_t *r, const char *p, size_t n, int *done)
{
    const srv_http_limits_t *lim = r->lim;
    size_t i = 0;
    int v;

    while (i < n) {
        unsigned char ch;

        if (r->cs == CS_DATA) {
            uint64_t k = SMALLER((uint64_t)(n - i), r->chunk_left);

            i += (size_t)k;
            r->chunk_left -= k;
            if (r->chunk_left == 0)
                r->cs = CS_DATA_CR;
            continue;
        }
        ch = (unsigned char)p[i++];
        if (++r->frame_bytes > lim->max_header_bytes) {
            fail(r, 431, "chunk framing too large");
            return 0;
        }
        switch (r->cs) {
        case CS_SIZE_START:
            if ((v = ascii_hexval(ch)) < 0)
                goto bad_chunk;
            r->chunk_size = (uint64_t)v;
            r->cs = CS_SIZE;
            break;
        case CS_SIZE:
            if ((v = ascii_hexval(ch)) >= 0) {
                r->chunk_size = r->chunk_size * 16 + (uint64_t)v;
                if (r->chunk_size > lim->max_body_bytes)
                    goto too_large;
            } else if (ch == ';') {
                r->cs = CS_EXT;
            } else if (ch == ' ' || ch == '\t') {
                r->cs = CS_SIZE_WS;
            } else if (ch == '\r') {
                r->cs = CS_SIZE_LF;
            } else {
                goto bad_chunk;
            }
            break;
        case CS_SIZE_WS:
            if (ch == ';')
                r->cs = CS_EXT;
            else if (ch != ' ' && ch != '\t')
                goto bad_chunk;
            break;
        case CS_EXT:
            if (ch == '\r')
                r->cs = CS_SIZE_LF;
            else if (!is_value_char(ch))
                goto bad_chunk;
            break;
        case CS_SIZE_LF:
            if (ch != '\n')
                goto bad_chunk;
            r->frame_bytes = 0;
            if (r->chunk_size == 0) {
                r->cs = CS_TR_START;
                break;
            }
            if (r->chunk_total + r->chunk_size > lim->max_body_bytes)
                goto too_large;
            r->chunk_total += r->chunk_size;
            r->chunk_left = r->chunk_size;
            r->cs = CS_DATA;
            break;
        case CS_DATA_CR:
            if (ch != '\r')
                goto bad_chunk;
            r->cs = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (ch != '\n')
                goto bad_chunk;
            r->frame_bytes = 0;
            r->cs = CS_SIZE_START;
            break;
        case CS_TR_START:
            if (ch == '\r') {
                r->cs = CS_END_LF;
                break;
            }
            if (!is_tchar(ch))
                goto bad_chunk;
            r->cs = CS_TR_FIELD;
            break;
        case CS_TR_FIELD:
            if (ch == ':')
                r->cs = CS_TR_VALUE;
            else if (!is_tchar(ch))
                goto bad_chunk;
            break;
        case CS_TR_VALUE:
            if (ch == '\r')
                r->cs = CS_TR_VALUE_LF;
            else if (!is_value_char(ch))
                goto bad_chunk;
            break;
        case CS_TR_VALUE_LF:
            if (ch != '\n')
                goto bad_chunk;
            r->cs = CS_TR_START;
            break;
        case CS_END_LF:
            if (ch != '\n')
                goto bad_chunk;
            r->cs = CS_DONE;
            *done = 1;
            return i;
        default:
            goto bad_chunk;
        }
    }
    return n;

bad_chunk:
    fail(r, 400, "bad chunked encoding");
    return 0;
too_large:
    fail(r, 413, "body too large");
    return 0;
}

/* http_parser callbacks: hp->data is the reqp_t. */

static int
on_url(http_parser *hp, const char *at, size_t len)
{
    reqp_t *r = hp->data;

    if (reqp_append(r, at, len) < 0)
        return -1;
    r->url_len += len;
    return 0;
}

/* Split the target into NUL-terminated path and query after the URL. */
static int
split_url(reqp_t *r)
{
    struct http_parser_url u;
    const char *path = "/", *query = "";
    size_t plen = 1, qlen = 0;
    size_t poff = 0, qoff = 0;
    int have_path, have_query;

    http_parser_url_init(&u);
    if (r->url_len == 0
        || http_parser_parse_url(r->buf, r->url_len, 0, &u) != 0)
        return fail(r, 400, "invalid url");
    have_path = (u.field_set & (1 << UF_PATH)) != 0;
    have_query = (u.field_set & (1 << UF_QUERY)) != 0;
    if (have_path) {
        poff = u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
        /*
         * RFC 9112 3.2: a path is "/..." or the asterisk-form "*" alone;
         * http_parser also takes "*" followed by anything (as "*" "/api"),
         * which would reach the handler as a path.  Found by fuzz_http.
         */
        if (r->buf[poff] != '/' && !(plen == 1 && r->buf[poff] == '*'))
            return fail(r, 400, "invalid url");
    }
    if (have_query) {
        qoff = u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
    }
    if (reqp_reserve(r, plen + qlen + 2) < 0)
        return -1;
    if (have_path)
        path = r->buf + poff;           /* valid after the reserve */
    if (have_query)
        query = r->buf + qoff;
    r->path_off = r->len;
    memcpy(r->buf + r->len, path, plen);
    r->len += plen;
    r->buf[r->len++] = '\0';
    r->query_off = r->len;
    memcpy(r->buf + r->len, query, qlen);
    r->len += qlen;
    r->buf[r->len++] = '\0';
    return 0;
}

static int
on_headers_complete(http_parser *hp)
{
    reqp_t *r = hp->data;
    const srv_http_limits_t *lim = r->lim;

    if (r->major != 1)
        return fail(r, 505, "http version not supported");
    if (hp->method == HTTP_CONNECT)
        return fail(r, 400, "unsupported method");
    /* Never switch protocols: the body and what follows stay HTTP. */
    hp->upgrade = 0;
    r->chunked = (hp->flags & F_CHUNKED) != 0;
    if (r->chunked != (r->n_te == 1))
        return fail(r, 400, "bad transfer-encoding");
    if (r->n_te && r->minor == 0)
        return fail(r, 400, "transfer-encoding in HTTP/1.0");
    if (r->n_cl && hp->content_length != r->cl_value)
        return fail(r, 400, "bad content-length");
    if (r->n_cl && r->cl_value > lim->max_body_bytes)
        return fail(r, 413, "body too large");
    r->keep_alive = http_should_keep_alive(hp) != 0;
    r->is_head = hp->method == HTTP_HEAD;
    if (split_url(r) < 0)
        return -1;
    r->body_off = r->len;
    if (r->n_cl && reqp_reserve(r, (size_t)r->cl_value + 1) < 0)
        return -1;
    if (r->expect_continue == 1
        && !(r->minor >= 1 && (r->chunked || r->cl_value > 0)))
        r->expect_continue = 0;
    r->headers_done = 1;
    return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t len)
{
    reqp_t *r = hp->data;

    if (r->body_len + len > r->lim->max_body_bytes)
        return fail(r, 413, "body too large");
    if (reqp_append(r, at, len) < 0)
        return -1;
    r->body_len += len;
    return 0;
}

static int
on_message_complete(http_parser *hp)
{
    reqp_t *r = hp->data;

    if (reqp_reserve(r, 1) < 0)
        return -1;
    r->buf[r->len] = '\0';
    r->complete = 1;
    http_parser_pause(hp, 1);           /* return at the message end */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Translate an http_parser error into our status and message. */
static int
fail_parser(reqp_t *r)
{
    switch (HTTP_PARSER_ERRNO(&r->hp)) {
    case HPE_HEADER_OVERFLOW:
        return fail(r, 431, "header too large");
    case HPE_INVALID_METHOD:
        return fail(r, 400, "invalid method");
    case HPE_INVALID_VERSION:
        return fail(r, 400, "invalid version");
    case HPE_INVALID_URL:
    case HPE_INVALID_HOST:
    case HPE_INVALID_PORT:
    case HPE_INVALID_PATH:
    case HPE_INVALID_QUERY_STRING:
    case HPE_INVALID_FRAGMENT:
        return fail(r, 400, "invalid url");
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return fail(r, 400, "bad content-length");
    case HPE_INVALID_TRANSFER_ENCODING:
        return fail(r, 400, "bad transfer-encoding");
    case HPE_INVALID_CHUNK_SIZE:
        return fail(r, 400, "bad chunked encoding");
    case HPE_LF_EXPECTED:
    case HPE_STRICT:
        return fail(r, 400, "bad line ending");
    default:
        return fail(r, 400, "bad request");
    }
}

/*
 * Feed input to the current message.  Returns 1 when it is complete (*used
 * = bytes up to its end; the rest starts the next message), 0 when all n
 * bytes were consumed and more are needed, -1 on error (r->err_status).
 * Each pass: the strict scanner picks the bytes of the current part (head,
 * body, chunked body), then http_parser reads exactly those bytes.
 */
static int
reqp_feed(reqp_t *r, const char *p, size_t n, size_t *used)
{
    size_t off = 0;

    r->started = 1;
    while (off < n) {
        size_t k, m;
        int done = 0;
        enum http_errno e;

        if (r->phase == RP_HEAD) {
            k = head_scan(r, p + off, n - off, &done);
        } else if (r->phase == RP_CHUNKED) {
            k = chunk_scan(r, p + off, n - off, &done);
        } else {
            k = (size_t)SMALLER((uint64_t)(n - off), r->body_left);
            r->body_left -= k;
            done = r->body_left == 0;
        }
        if (r->err_status)
            return -1;
        m = http_parser_execute(&r->hp, &parser_settings, p + off, k);
        if (r->err_status)
            return -1;
        e = HTTP_PARSER_ERRNO(&r->hp);
        if (e != HPE_OK && e != HPE_PAUSED)
            return fail_parser(r);
        /*
         * The parser must have read exactly the scanned bytes, ending the
         * head where the scanner did and the message where it did.
         */
        if (m != k)
            return fail(r, 400, "ambiguous framing");
        if (r->phase == RP_HEAD) {
            if (done != r->headers_done || (r->complete && !done))
                return fail(r, 400, "ambiguous framing");
        } else if (done != r->complete) {
            return fail(r, 400, "ambiguous framing");
        }
        off += k;
        if (r->phase == RP_HEAD && done && !r->complete) {
            if (r->chunked) {
                r->phase = RP_CHUNKED;
            } else if (r->n_cl && r->cl_value > 0) {
                r->phase = RP_BODY;
                r->body_left = r->cl_value;
            } else {
                return fail(r, 400, "ambiguous framing");
            }
        }
        if (r->complete) {
            *used = off;
            return 1;
        }
    }
    *used = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

static void conn_timer_update(conn_t *c);
static void conn_flushed(conn_t *c);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static uint64_t
now_ms(const conn_t *c)
{
    return uv_now(c->h->loop);
}

static void
maybe_done(srv_http_t *h)
{
    if (h->stopping && h->server_closed && h->nconns == 0
        && !h->done_called) {
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
    c->t_write_progress = now_ms(c);
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
        c->t_write_progress = now_ms(c);
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
               && h->lim.keepalive_timeout_ms != SRV_HTTP_KEEPALIVE_OFF;
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
    c->t_idle = now_ms(c);
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
            c->t_req_start = now_ms(c);
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
        c->t_linger = now_ms(c);
    } else if (c->state == CS_OPEN) {
        c->t_idle = now_ms(c);
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
    uint64_t d = c->t_idle + (h->lim.keepalive_timeout_ms
                              == SRV_HTTP_KEEPALIVE_OFF
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
    uint64_t now = now_ms(c), d;

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
    uint64_t now = now_ms(c), d = UINT64_MAX;

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
    c->t_last_read = now_ms(c);
    conn_feed(c, buf->base, (size_t)nread);
    if (c->state == CS_OPEN && c->reading
        && c->wq_bytes > h->lim.max_write_queue_bytes) {
        uv_read_stop(s);
        c->reading = 0;
        c->read_paused = 1;
    }
    conn_timer_update(c);
}

static void
on_reject_close(uv_handle_t *handle)
{
    free(handle);
}

/* Over max_connections: try to say 503, then close. */
static void
reject(srv_http_t *h)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\nContent-Length: 32\r\n"
        "Connection: close\r\n\r\n{\"error\":\"too many connections\"}";
    uv_tcp_t *t = malloc(sizeof(*t));
    uv_buf_t b = uv_buf_init((char *)resp, sizeof(resp) - 1);

    if (t == NULL || uv_tcp_init(h->loop, t) < 0) {
        free(t);
        return;
    }
    if (uv_accept((uv_stream_t *)&h->server, (uv_stream_t *)t) == 0) {
        h->counters.conn_rejected++;
        h->counters.responses_5xx++;
        (void)uv_try_write((uv_stream_t *)t, &b, 1);
    }
    uv_close((uv_handle_t *)t, on_reject_close);
}

static void
on_connection(uv_stream_t *server, int status)
{
    srv_http_t *h = server->data;
    conn_t *c;

    if (status < 0 || h->stopping)
        return;
    if (h->nconns >= h->lim.max_connections) {
        reject(h);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    if (uv_tcp_init(h->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->h = h;
    c->tcp.data = c;
    c->timer.data = c;
    c->rp.lim = &h->lim;
    reqp_reset(&c->rp);
    c->handles = 1;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_timer_init(h->loop, &c->timer) < 0) {
        c->state = CS_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
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
    c->t_idle = now_ms(c);
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

/* Copy lim into out: 0 means default; clamp to what the code can hold. */
static void
limits_normalize(srv_http_limits_t *out, const srv_http_limits_t *lim)
{
    srv_http_limits_t d;

    srv_http_limits_default(&d);
    if (lim == NULL)
        lim = &d;
#define PICK(f) out->f = lim->f ? lim->f : d.f
    PICK(max_header_bytes);
    PICK(max_url_bytes);
    PICK(max_body_bytes);
    PICK(header_timeout_ms);
    PICK(keepalive_timeout_ms);
    PICK(max_connections);
    PICK(write_timeout_ms);
    PICK(max_write_queue_bytes);
#undef PICK
    if (out->max_url_bytes > MAX_URL_CAP)
        out->max_url_bytes = MAX_URL_CAP;
    if (out->max_body_bytes > MAX_BODY_CAP)
        out->max_body_bytes = MAX_BODY_CAP;
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
    h->rbuf = malloc(RBUF_SIZE);
    if (h->rbuf == NULL) {
        rc = -ENOMEM;
        goto error;
    }
    h->loop = loop;
    h->fn = fn;
    h->ctx = ctx;
    limits_normalize(&h->lim, lim);
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
