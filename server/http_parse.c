/*
 * http_parse.c -- the worker's HTTP/1.1 request parser: a strict RFC 9112
 * scanner for the head and the chunked framing, and the adapter that feeds
 * exactly the bytes it accepted to libhttp-parser for method, URL,
 * keep-alive and the decoded body.  One reqp_t per connection; connection
 * handling is in http.c.  Read "Request framing" first (why two parsers
 * read every head), then reqp_feed().  API: http_parse.h.
 */
#include "http_parse.h"

#include <stdlib.h>
#include <string.h>

#include "ascii.h"

#define REQBUF_MIN      1024            /* first per-connection buffer */
#define REQBUF_KEEP     (64 * 1024)     /* larger buffers are freed when a
                                         * request is done */

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
void
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

void
reqp_init(reqp_t *r, const srv_http_limits_t *lim)
{
    memset(r, 0, sizeof(*r));
    r->lim = lim;
    reqp_reset(r);
}

void
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
int
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
