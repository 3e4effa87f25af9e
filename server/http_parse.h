/*
 * http_parse.h -- the request parser of the worker's HTTP layer: a strict
 * RFC 9112 scanner in front of http_parser, one per connection, fed the
 * bytes as they arrive; it says where each message ends and hands over
 * method, path, query and decoded body.  Internal to server/http*.c (the
 * public API is http.h).  Why two parsers read every head: "Request
 * framing" in http_parse.c.
 */
#ifndef SRV_HTTP_PARSE_H
#define SRV_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "http.h"

#define SMALLER(a, b)   ((a) < (b) ? (a) : (b))

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
 * phase, hs, cs and hkind hold the scanner states enumerated in
 * http_parse.c; the connection reads the flags, err_* and the offsets.
 */
typedef struct reqp {
    http_parser hp;
    const srv_http_limits_t *lim;
    unsigned char phase;        /* RP_* */
    unsigned char hs;           /* HS_* */
    unsigned char cs;           /* CS_*: chunk_scan() state */
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

/* Set up r for its first message under the limits lim (kept by pointer:
 * they must outlive r). */
void reqp_init(reqp_t *r, const srv_http_limits_t *lim);

/* Start the next message; keeps the buffer unless it grew large. */
void reqp_reset(reqp_t *r);

/* Free the buffer; r can be reset and used again. */
void reqp_fini(reqp_t *r);

/*
 * Feed input to the current message.  Returns 1 when it is complete (*used
 * = bytes up to its end; the rest starts the next message), 0 when all n
 * bytes were consumed and more are needed, -1 on error (r->err_status and
 * r->err_msg say what to answer).
 */
int reqp_feed(reqp_t *r, const char *p, size_t n, size_t *used);

#endif /* SRV_HTTP_PARSE_H */
