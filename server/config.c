/*
 * config.c -- the server's configuration: defaults, the JSON config file,
 * the command line, and the resolved configuration as JSON (API: config.h).
 *
 * Every setting is one row of the table `opts` below: its flag, its field
 * in cfg_t, its kind and range, and its help line.  The config file keys,
 * getopt's table, the validation messages, --help and cfg_to_json() are
 * all derived from that row, so a new setting is one new row (plus the
 * field).  Values are parsed into a copy of the configuration, which
 * replaces the caller's only when everything is valid.
 */
#include "config.h"
#include "errmsg.h"
#include "fileio.h"
#include "gc.h"
#include "http.h"
#include "jsonpos.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES (16u << 20)      /* larger config files: -EFBIG */

typedef enum {
    K_CONFIG,       /* char *: -c FILE; in a file: checked, ignored */
    K_STR,          /* char *, NULL when unset */
    K_HOST,         /* char[64] */
    K_INT,          /* int */
    K_LONG,         /* long */
    K_UINT,         /* unsigned */
    K_SIZE,         /* size_t */
    K_DOUBLE,       /* double */
    K_FLAG,         /* int, 0 or 1; JSON boolean */
    K_GC,           /* int gc_enabled: on | off */
    K_EXIT,         /* cfg_exit_t: finalize | skip */
    K_THRESH,       /* long[3]: A,B,C */
    K_LIST,         /* long[CFG_MAX_REFORK] + int count: N[,N2,...] */
    K_CHOICE        /* int: one of .choices, stored as .values[i] */
} kind_t;

typedef struct opt {
    const char *name;           /* long flag; the file key has '_' for '-' */
    int short_name;             /* 0 if none */
    kind_t kind;
    size_t off;                 /* of the field in cfg_t */
    long long imin, imax;       /* integer kinds, K_THRESH: inclusive */
    double dmin, dmax;          /* K_DOUBLE: inclusive... */
    int dmin_open;              /* ...except dmin when this is set */
    int (*char_ok)(int ch);     /* strings: allowed characters, NULL = any */
    size_t maxlen;              /* strings: 0 = no limit */
    const char *expect;         /* strings: what a valid value is */
    const char *unset;          /* strings: what NULL means (NULL: K_HOST) */
    int cli_only;               /* in a file: type-checked, then ignored */
    const char *meta;           /* argument name in --help, NULL: a flag */
    const char *help;
    const char *const *choices; /* K_CHOICE: the names, NULL-terminated */
    const int *values;          /* K_CHOICE: the value of each name */
} opt_t;

static const char *const python_names[] = { "3.11", "3.12", NULL };
static const int python_values[] = { 311, 312 };
/* The runtime's own names and values (object.h), so that a new mode there
 * is a new entry here and nothing else. */
static const char *const gc_layout_names[] = { "inline", "side", "bitmap",
                                               NULL };
static const int gc_layout_values[] = { RT_GC_INLINE, RT_GC_SIDE,
                                        RT_GC_BITMAP };
static const char *const refcount_names[] = { "inline", "split", NULL };
static const int refcount_values[] = { RT_RC_INLINE, RT_RC_SPLIT };
static const char *const prefork_names[] = { "import", "collected", NULL };
static const int prefork_values[] = { CFG_PREFORK_IMPORT,
                                      CFG_PREFORK_COLLECTED };

/* Index of name among o->choices, or -1. */
static int
choice_index(const opt_t *o, const char *name)
{
    for (int i = 0; o->choices[i] != NULL; i++)
        if (strcmp(o->choices[i], name) == 0)
            return i;
    return -1;
}

/* The name of the value a K_CHOICE field holds. */
static const char *
choice_name(const opt_t *o, int value)
{
    for (int i = 0; o->choices[i] != NULL; i++)
        if (o->values[i] == value)
            return o->choices[i];
    return "?";
}

static int
name_char(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
}

static int
label_char(int ch)
{
    return name_char(ch) || ch == '+' || ch == '=' || ch == ':';
}

static int
host_char(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '_'
           || ch == '%';
}

#define OFF(field) offsetof(cfg_t, field)

static const char *const attribution_names[] = {
    "auto", "write-sets", "pagemap", "off", NULL
};
static const int attribution_values[] = { CFG_ATTR_AUTO, CFG_ATTR_WSET,
                                          CFG_ATTR_PAGEMAP, CFG_ATTR_OFF };

static const char *const refork_choices[] = { "first", "least-copied",
                                              NULL };
static const int refork_values[] = { CFG_REFORK_FIRST,
                                     CFG_REFORK_LEAST_COPIED };
static const opt_t opts[] = {
    { .name = "config", .short_name = 'c', .kind = K_CONFIG,
      .off = OFF(config_path), .expect = "a file name", .unset = "none",
      .cli_only = 1, .meta = "FILE",
      .help = "read settings from this JSON file first" },
    { .name = "workload", .kind = K_STR, .off = OFF(workload_path),
      .expect = "a file name", .unset = "embedded 'webapp'", .meta = "FILE",
      .help = "workload description (JSON)" },
    { .name = "scale", .kind = K_DOUBLE, .off = OFF(scale),
      .dmin = 0, .dmax = 1000, .dmin_open = 1, .meta = "X",
      .help = "multiply the workload's heap size, (0, 1000]" },
    { .name = "workers", .short_name = 'w', .kind = K_INT,
      .off = OFF(workers), .imin = 1, .imax = 256, .meta = "N",
      .help = "worker processes, 1..256" },
    { .name = "host", .kind = K_HOST, .off = OFF(host),
      .char_ok = host_char, .maxlen = 63,
      .expect = "a host name or address (1 to 63 characters)",
      .meta = "ADDR", .help = "address to listen on" },
    { .name = "port", .kind = K_INT, .off = OFF(port),
      .imin = 0, .imax = 65535, .meta = "N",
      .help = "TCP port; 0 picks a free one" },
    { .name = "gc", .kind = K_GC, .off = OFF(gc_enabled), .meta = "on|off",
      .help = "cyclic GC; off = gc.set_threshold(0)" },
    { .name = "gc-threshold", .kind = K_THRESH, .off = OFF(gc_threshold),
      .imin = 0, .imax = LONG_MAX, .meta = "A,B,C",
      .help = "GC thresholds of generations 0, 1, 2" },
    { .name = "freeze", .kind = K_FLAG, .off = OFF(freeze),
      .help = "gc.freeze() in the master before fork" },
    { .name = "immortal", .kind = K_FLAG, .off = OFF(immortal),
      .help = "make the whole pre-fork heap immortal" },
    { .name = "lazy", .kind = K_FLAG, .off = OFF(lazy),
      .help = "build the heap in each worker (no sharing)" },
    { .name = "exit", .kind = K_EXIT, .off = OFF(exit_policy),
      .meta = "finalize|skip", .help = "worker teardown" },
    { .name = "python", .kind = K_CHOICE, .off = OFF(python),
      .choices = python_names, .values = python_values,
      .meta = "3.11|3.12",
      .help = "CPython the heap mirrors (layouts, immortals)" },
    { .name = "prefork-gc", .kind = K_CHOICE, .off = OFF(prefork_gc),
      .choices = prefork_names, .values = prefork_values,
      .meta = "MODE",
      .help = "GC state at fork: import or collected" },
    { .name = "gc-layout", .kind = K_CHOICE, .off = OFF(gc_layout),
      .choices = gc_layout_names, .values = gc_layout_values,
      .meta = "LAYOUT",
      .help = "GC state: inline, side or bitmap" },
    { .name = "refcount", .kind = K_CHOICE, .off = OFF(refcount),
      .choices = refcount_names, .values = refcount_values,
      .meta = "MODE",
      .help = "refcounts: inline, split (per worker)" },
    { .name = "warmup", .kind = K_FLAG, .off = OFF(warmup),
      .help = "collect, promote, hash, trim, freeze; then fork" },
    { .name = "max-requests", .kind = K_LONG, .off = OFF(max_requests),
      .imin = 0, .imax = LONG_MAX, .meta = "N",
      .help = "recycle a worker after N requests; 0 = never" },
    { .name = "max-requests-jitter", .kind = K_LONG,
      .off = OFF(max_requests_jitter), .imin = 0, .imax = LONG_MAX,
      .meta = "N", .help = "add 0..N to each worker's max-requests" },
    { .name = "timeout", .kind = K_DOUBLE, .off = OFF(timeout_s),
      .dmin = 0, .dmax = 86400, .meta = "S",
      .help = "kill a worker stuck S s in a request; 0 = off" },
    { .name = "graceful-timeout", .kind = K_DOUBLE,
      .off = OFF(graceful_timeout_s), .dmin = 0, .dmax = 86400,
      .meta = "S", .help = "SIGTERM drain time before SIGKILL" },
    { .name = "sample-ms", .kind = K_UINT, .off = OFF(sample_ms),
      .imin = 10, .imax = 3600000, .meta = "N",
      .help = "sample the workers every N ms" },
    { .name = "sample-budget", .kind = K_DOUBLE, .off = OFF(sample_budget_pct),
      .dmin = 0, .dmax = 100, .meta = "PCT",
      .help = "CPU share of one core sampling may use" },
    { .name = "duration", .kind = K_DOUBLE, .off = OFF(duration_s),
      .dmin = 0, .dmax = 31536000, .meta = "S",
      .help = "stop after S seconds; 0 = at a signal" },
    { .name = "requests", .kind = K_LONG, .off = OFF(requests),
      .imin = 0, .imax = LONG_MAX, .meta = "N",
      .help = "stop after N requests in all; 0 = no limit" },
    { .name = "out", .kind = K_STR, .off = OFF(out_dir),
      .expect = "a directory name", .unset = "no CSV", .meta = "DIR",
      .help = "results folder" },
    { .name = "run-id", .kind = K_STR, .off = OFF(run_id),
      .char_ok = name_char, .maxlen = 128,
      .expect = "letters, digits, '.', '_', '-' (at most 128, no "
                "leading '.')",
      .unset = "from the time", .meta = "ID",
      .help = "run name in CSV and folder" },
    { .name = "policy-name", .kind = K_STR, .off = OFF(policy_name),
      .char_ok = label_char, .maxlen = 64,
      .expect = "letters, digits, '.', '_', '-', '+', '=', ':' (at most "
                "64, no leading '.')",
      .unset = "derived", .meta = "NAME",
      .help = "policy label written to the CSVs" },
    { .name = "type-census", .kind = K_FLAG, .off = OFF(type_census),
      .help = "count heap objects by type" },
    { .name = "pagemap-gc-fraction", .kind = K_DOUBLE,
      .off = OFF(pagemap_gc_fraction), .dmin = 0, .dmax = 1, .meta = "F",
      .help = "fraction of GCs followed by a pagemap scan" },
    { .name = "attribution", .kind = K_CHOICE, .off = OFF(attribution),
      .choices = attribution_names, .values = attribution_values,
      .meta = "M",
      .help = "copies by cause: auto|write-sets|pagemap|off" },
    { .name = "write-sample-ms", .kind = K_UINT, .off = OFF(write_sample_ms),
      .imin = 0, .imax = 3600000, .meta = "N",
      .help = "sample a request's write set every N ms" },
    { .name = "write-kinds", .kind = K_FLAG, .off = OFF(write_kinds),
      .help = "diagnostic: copies by kind of write (slower)" },
    { .name = "smaps-ms", .kind = K_UINT, .off = OFF(smaps_ms),
      .imin = 0, .imax = 3600000, .meta = "N",
      .help = "smaps_rollup every N ms at most; 0: each sample" },
    { .name = "limit-header-bytes", .kind = K_SIZE,
      .off = OFF(max_header_bytes), .imin = 256, .imax = 16 << 20,
      .meta = "N", .help = "largest request head" },
    { .name = "limit-url-bytes", .kind = K_SIZE, .off = OFF(max_url_bytes),
      .imin = 16, .imax = 16 << 20, .meta = "N", .help = "longest URL" },
    { .name = "limit-body-bytes", .kind = K_SIZE,
      .off = OFF(max_body_bytes), .imin = 0, .imax = 1 << 30, .meta = "N",
      .help = "largest request body; 0 = none" },
    { .name = "header-timeout-ms", .kind = K_UINT,
      .off = OFF(header_timeout_ms), .imin = 1, .imax = 3600000,
      .meta = "N", .help = "time to receive a request head" },
    { .name = "keepalive-timeout-ms", .kind = K_UINT,
      .off = OFF(keepalive_timeout_ms), .imin = 0, .imax = 3600000,
      .meta = "N", .help = "idle keep-alive; 0 = close after reply" },
    { .name = "max-connections", .kind = K_UINT,
      .off = OFF(max_connections), .imin = 1, .imax = 1000000,
      .meta = "N", .help = "open connections per worker" },
    { .name = "ksm", .kind = K_FLAG, .off = OFF(ksm),
      .help = "KSM: workers mergeable, ksmd running (root)" },
    { .name = "ksm-pages-to-scan", .kind = K_UINT,
      .off = OFF(ksm_pages_to_scan), .imin = 1, .imax = 1000000,
      .meta = "N", .help = "pages ksmd scans per wake-up (--ksm)" },
    { .name = "ksm-sleep-ms", .kind = K_UINT, .off = OFF(ksm_sleep_ms),
      .imin = 1, .imax = 600000, .meta = "N",
      .help = "ksmd's sleep between scans (--ksm)" },
    { .name = "identical-pages", .kind = K_FLAG, .off = OFF(identical_pages),
      .help = "count copied pages equal to the master's" },
    { .name = "identical-diff", .kind = K_FLAG, .off = OFF(identical_diff),
      .help = "diffs.csv: differing words by field, at the end" },
    { .name = "refork-after", .kind = K_LIST, .off = OFF(refork_after),
      .imin = 1, .imax = LONG_MAX, .meta = "N[,N2..]",
      .help = "after N requests a worker is the mold" },
    { .name = "refork-select", .kind = K_CHOICE, .off = OFF(refork_select),
      .choices = refork_choices, .values = refork_values, .meta = "HOW",
      .help = "mold: first to N, or least-copied" },
    { .name = "max-copied-pct", .kind = K_DOUBLE, .off = OFF(max_copied_pct),
      .dmin = 0, .dmax = 100, .meta = "P",
      .help = "replace a worker past P% heap copied" },
    { .name = "reload-on-rss", .kind = K_UINT, .off = OFF(reload_on_rss_mb),
      .imin = 0, .imax = 16777216, .meta = "MIB",
      .help = "recycle a worker past MIB of RSS" },
    { .name = "check-config", .kind = K_FLAG, .off = OFF(check_config),
      .cli_only = 1, .help = "print the resolved config as JSON, exit 0" },
    { .name = "quiet", .short_name = 'q', .kind = K_FLAG,
      .off = OFF(quiet), .help = "log only errors" },
};

#define N_OPTS (sizeof opts / sizeof opts[0])

/* getopt_long values: opts[i] is VAL_OPT + i, its --no- form VAL_NO + i. */
enum { VAL_OPT = 256, VAL_NO = 512, VAL_HELP = 1024, VAL_VERSION };

/* The string fields, for copying and freeing. */
static const size_t str_fields[] = {
    OFF(config_path), OFF(workload_path), OFF(out_dir), OFF(run_id),
    OFF(policy_name),
};

#define N_STR_FIELDS (sizeof str_fields / sizeof str_fields[0])

#define FIELD(c, o, type) ((type *)((char *)(c) + (o)->off))
#define CFIELD(c, o, type) ((const type *)((const char *)(c) + (o)->off))

/*
 * The defaults that belong to a lower layer are taken from it, so that
 * each is written once: the GC thresholds from gc.h, the HTTP limits from
 * srv_http_limits_default().  A 0 in any of them means what it means
 * there (keep-alive 0: close after each response; body 0: no body).
 */
void
cfg_defaults(cfg_t *c)
{
    srv_http_limits_t lim;

    srv_http_limits_default(&lim);
    memset(c, 0, sizeof *c);
    c->scale = 1.0;
    c->workers = 4;
    strcpy(c->host, "127.0.0.1");
    c->port = 8000;
    c->gc_enabled = 1;
    c->gc_threshold[0] = GC_THRESHOLD0_DEFAULT;
    c->gc_threshold[1] = GC_THRESHOLD1_DEFAULT;
    c->gc_threshold[2] = GC_THRESHOLD2_DEFAULT;
    c->exit_policy = CFG_EXIT_FINALIZE;
    c->python = 312;
    c->prefork_gc = CFG_PREFORK_IMPORT;
    c->gc_layout = RT_GC_INLINE;
    c->refcount = RT_RC_INLINE;
    c->timeout_s = 30;
    c->graceful_timeout_s = 30;
    c->sample_ms = 250;
    c->pagemap_gc_fraction = 0.01;
    c->attribution = CFG_ATTR_AUTO;
    c->write_sample_ms = 10000;
    c->smaps_ms = 10000;
    c->sample_budget_pct = 1.0;
    c->max_header_bytes = lim.max_header_bytes;
    c->max_url_bytes = lim.max_url_bytes;
    c->max_body_bytes = lim.max_body_bytes;
    c->header_timeout_ms = lim.header_timeout_ms;
    c->keepalive_timeout_ms = lim.keepalive_timeout_ms;
    c->max_connections = lim.max_connections;
    c->ksm_pages_to_scan = 5000;
    c->ksm_sleep_ms = 20;
    c->refork_select = CFG_REFORK_FIRST;
}

void
cfg_free(cfg_t *c)
{
    size_t i;

    for (i = 0; i < N_STR_FIELDS; i++) {
        char **p = (char **)((char *)c + str_fields[i]);

        free(*p);
        *p = NULL;
    }
}

/* *dst = *src with its own copies of the strings. */
static int
cfg_copy(cfg_t *dst, const cfg_t *src)
{
    size_t i;

    *dst = *src;
    for (i = 0; i < N_STR_FIELDS; i++) {
        char **p = (char **)((char *)dst + str_fields[i]);

        if (*p != NULL && (*p = strdup(*p)) == NULL) {
            while (i-- > 0) {
                p = (char **)((char *)dst + str_fields[i]);
                free(*p);
            }
            return -ENOMEM;
        }
    }
    return 0;
}

/* The file key of an option: its name with '_' for '-'. */
static void
key_of(const opt_t *o, char *buf, size_t len)
{
    size_t i;

    for (i = 0; o->name[i] != '\0' && i + 1 < len; i++)
        buf[i] = o->name[i] == '-' ? '_' : o->name[i];
    buf[i] = '\0';
}

static const opt_t *
opt_by_key(const char *key)
{
    char k[64];
    size_t i;

    for (i = 0; i < N_OPTS; i++) {
        key_of(&opts[i], k, sizeof k);
        if (strcmp(k, key) == 0)
            return &opts[i];
    }
    return NULL;
}

/*
 * The option whose key (as_key) or flag name is nearest to `word`, if near
 * enough to be a typo (emsg_near_result()); NULL if none is.
 */
static const opt_t *
nearest(const char *word, int as_key)
{
    char names[N_OPTS][64];
    emsg_near_t n;
    const char *best;
    size_t i;

    emsg_near_init(&n, word);
    for (i = 0; i < N_OPTS; i++) {
        if (as_key)
            key_of(&opts[i], names[i], sizeof names[i]);
        else
            snprintf(names[i], sizeof names[i], "%s", opts[i].name);
        emsg_near_try(&n, names[i]);
    }
    if ((best = emsg_near_result(&n)) == NULL)
        return NULL;
    return &opts[(size_t)(best - names[0]) / sizeof names[0]];
}

/* "an integer from 1 to 256", "a number > 0 and <= 1000", ... */
static void
expected(const opt_t *o, int json, char *buf, size_t len)
{
    switch (o->kind) {
    case K_INT: case K_LONG: case K_UINT: case K_SIZE:
        emsg_expect_int(buf, len, o->imin, o->imax);
        break;
    case K_DOUBLE:
        emsg_expect_number(buf, len, o->dmin, o->dmin_open, o->dmax);
        break;
    case K_FLAG:
        snprintf(buf, len, "true or false");
        break;
    case K_GC:
        snprintf(buf, len, json ? "\"on\" or \"off\"" : "on or off");
        break;
    case K_EXIT:
        snprintf(buf, len, json ? "\"finalize\" or \"skip\""
                                : "finalize or skip");
        break;
    case K_THRESH:
        snprintf(buf, len, json ? "an array of three integers >= 0"
                                : "three integers >= 0 as A,B,C");
        break;
    case K_LIST:
        snprintf(buf, len, json ? "an array of at most %d integers >= 1"
                                : "0, or at most %d integers >= 1 as N,N2,...",
                 CFG_MAX_REFORK);
        break;
    case K_CHOICE: {
        size_t n = 0;
        buf[0] = '\0';
        for (int i = 0; o->choices[i] != NULL && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s%s%s",
                                  i == 0 ? "" : o->choices[i + 1] ? ", "
                                                                  : " or ",
                                  json ? "\"" : "", o->choices[i],
                                  json ? "\"" : "");
        break;
    }
    case K_CONFIG: case K_STR: case K_HOST:
        snprintf(buf, len, "%s%s", o->expect,
                 json && o->unset != NULL ? " or null" : "");
        break;
    }
}

static int
in_range_ll(const opt_t *o, long long v)
{
    return v >= o->imin && v <= o->imax;
}

static int
in_range_d(const opt_t *o, double v)
{
    return isfinite(v) && (o->dmin_open ? v > o->dmin : v >= o->dmin)
           && v <= o->dmax;
}

static void
store_ll(cfg_t *c, const opt_t *o, long long v)
{
    switch (o->kind) {
    case K_INT:  *FIELD(c, o, int) = (int)v; break;
    case K_LONG: *FIELD(c, o, long) = (long)v; break;
    case K_UINT: *FIELD(c, o, unsigned) = (unsigned)v; break;
    case K_SIZE: *FIELD(c, o, size_t) = (size_t)v; break;
    default: break;
    }
}

static long long
load_ll(const cfg_t *c, const opt_t *o)
{
    switch (o->kind) {
    case K_INT:  return *CFIELD(c, o, int);
    case K_LONG: return *CFIELD(c, o, long);
    case K_UINT: return *CFIELD(c, o, unsigned);
    case K_SIZE: return (long long)*CFIELD(c, o, size_t);
    default: return 0;
    }
}

/*
 * Is s valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as jansson requires of every string?  A file name given on
 * the command line can be any bytes; one that is not UTF-8 made
 * cfg_to_json() return NULL (no "config" in meta.json, "{}" from
 * --check-config).  Found by fuzz_config.
 */
static int
utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p, n, cp, k;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* A valid string value (not unset): non-empty, allowed chars, length. */
static int
string_ok(const opt_t *o, const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || (o->maxlen != 0 && n > o->maxlen))
        return 0;
    if (o->char_ok != NULL) {
        if (s[0] == '.' && o->kind == K_STR)
            return 0;                   /* no ".", "..", hidden folders */
        for (i = 0; i < n; i++)
            if (!o->char_ok((unsigned char)s[i]))
                return 0;
    }
    return 1;
}

/*
 * Store string s (already checked; NULL = unset) into the option's field.
 * K_CONFIG is never stored here: the loader records the file it read.
 */
static int
store_str(cfg_t *c, const opt_t *o, const char *s)
{
    char *dup = NULL;

    if (o->kind == K_HOST) {
        snprintf(c->host, sizeof c->host, "%s", s);
        return 0;
    }
    if (s != NULL && (dup = strdup(s)) == NULL)
        return -ENOMEM;
    free(*FIELD(c, o, char *));
    *FIELD(c, o, char *) = dup;
    return 0;
}

/* ---- The config file ---- */

static int
json_bad(const emsg_src_t *src, const char *ptr, const opt_t *o,
         const json_t *v)
{
    char want[160];

    expected(o, 1, want, sizeof want);
    return emsg_bad_value(src, ptr, want, v);
}

/* Check v for option o; unless o is cli_only, store it into *c. */
static int
apply_json(cfg_t *c, const opt_t *o, const json_t *v,
           const emsg_src_t *src, const char *ptr)
{
    char eptr[300];
    const char *s;
    size_t i;

    switch (o->kind) {
    case K_INT: case K_LONG: case K_UINT: case K_SIZE:
        if (!json_is_integer(v) || !in_range_ll(o, json_integer_value(v)))
            return json_bad(src, ptr, o, v);
        store_ll(c, o, json_integer_value(v));
        return 0;
    case K_DOUBLE:
        if (!json_is_number(v) || !in_range_d(o, json_number_value(v)))
            return json_bad(src, ptr, o, v);
        *FIELD(c, o, double) = json_number_value(v);
        return 0;
    case K_FLAG:
        if (!json_is_boolean(v))
            return json_bad(src, ptr, o, v);
        if (!o->cli_only)
            *FIELD(c, o, int) = json_is_true(v);
        return 0;
    case K_GC:
        if (json_is_boolean(v))
            c->gc_enabled = json_is_true(v);
        else if (json_is_string(v) && strcmp(json_string_value(v), "on") == 0)
            c->gc_enabled = 1;
        else if (json_is_string(v)
                 && strcmp(json_string_value(v), "off") == 0)
            c->gc_enabled = 0;
        else
            return json_bad(src, ptr, o, v);
        return 0;
    case K_EXIT:
        s = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(s, "finalize") == 0)
            c->exit_policy = CFG_EXIT_FINALIZE;
        else if (strcmp(s, "skip") == 0)
            c->exit_policy = CFG_EXIT_SKIP;
        else
            return json_bad(src, ptr, o, v);
        return 0;
    case K_CHOICE: {
        int ci = json_is_string(v) ? choice_index(o, json_string_value(v))
                                   : -1;
        if (ci < 0)
            return json_bad(src, ptr, o, v);
        *FIELD(c, o, int) = o->values[ci];
        return 0;
    }
    case K_THRESH:
        if (!json_is_array(v) || json_array_size(v) != 3)
            return json_bad(src, ptr, o, v);
        for (i = 0; i < 3; i++) {
            json_t *e = json_array_get(v, i);
            char want[80];

            if (json_is_integer(e) && in_range_ll(o, json_integer_value(e)))
                continue;
            snprintf(eptr, sizeof eptr, "%s", ptr);
            jpos_path_append_index(eptr, sizeof eptr, i);
            emsg_expect_int(want, sizeof want, o->imin, o->imax);
            return emsg_bad_value(src, eptr, want, e);
        }
        for (i = 0; i < 3; i++)
            c->gc_threshold[i] = (long)json_integer_value(
                json_array_get(v, i));
        return 0;
    case K_LIST: {
        long *dst = FIELD(c, o, long);
        if (!json_is_array(v) || json_array_size(v) > CFG_MAX_REFORK)
            return json_bad(src, ptr, o, v);
        for (i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            char want[80];

            if (json_is_integer(e) && in_range_ll(o, json_integer_value(e)))
                continue;
            snprintf(eptr, sizeof eptr, "%s", ptr);
            jpos_path_append_index(eptr, sizeof eptr, i);
            emsg_expect_int(want, sizeof want, o->imin, o->imax);
            return emsg_bad_value(src, eptr, want, e);
        }
        for (i = 0; i < json_array_size(v); i++)
            dst[i] = (long)json_integer_value(json_array_get(v, i));
        c->refork_after_n = (int)json_array_size(v);
        return 0;
    }
    case K_CONFIG: case K_STR: case K_HOST:
        if (json_is_null(v) && o->unset != NULL)
            s = NULL;
        else if (json_is_string(v) && o->unset != NULL
                 && json_string_length(v) == 0)
            s = NULL;                   /* "" unsets, as on the command line */
        else if (json_is_string(v) && string_ok(o, json_string_value(v)))
            s = json_string_value(v);
        else
            return json_bad(src, ptr, o, v);
        if (o->cli_only)
            return 0;
        if (store_str(c, o, s) < 0)
            return emsg_oom(src);
        return 0;
    }
    return 0;
}

int
cfg_load_file(cfg_t *c, const char *path, char *err, size_t errlen)
{
    emsg_src_t src = { path, NULL, 0, err, errlen };
    json_t *root = NULL, *v;
    const char *key;
    char *text = NULL, *dup;
    char ptr[300];
    size_t len = 0;
    cfg_t tmp;
    int rc;

    if (!utf8_ok(path)) {               /* see utf8_ok() */
        emsg_set(err, errlen, "config file name is not UTF-8");
        return -EINVAL;
    }
    if ((rc = fio_read_file(path, MAX_FILE_BYTES, &text, &len)) < 0)
        return emsg_read_error(err, errlen, path, "config file", rc);
    src.text = text;
    src.len = len;
    if ((rc = emsg_parse_object(&src, "config file",
                                "a JSON object of settings", &root)) < 0)
        goto out;
    if (cfg_copy(&tmp, c) < 0) {
        rc = emsg_oom(&src);
        goto out;
    }
    json_object_foreach(root, key, v) {
        const opt_t *o = opt_by_key(key);

        ptr[0] = '\0';
        jpos_path_append_key(ptr, sizeof ptr, key);
        if (o == NULL) {
            const opt_t *near = nearest(key, 1);
            char k[64];

            if (near != NULL)
                key_of(near, k, sizeof k);
            rc = emsg_unknown_key(&src, ptr, near != NULL ? k : NULL,
                                  "cowlab --help lists the settings");
            goto fail;
        }
        if ((rc = apply_json(&tmp, o, v, &src, ptr)) < 0)
            goto fail;
    }
    if ((dup = strdup(path)) == NULL) {
        rc = emsg_oom(&src);
        goto fail;
    }
    free(tmp.config_path);
    tmp.config_path = dup;
    cfg_free(c);
    *c = tmp;
    rc = 0;
    goto out;

fail:
    cfg_free(&tmp);
out:
    json_decref(root);
    free(text);
    return rc;
}

/* ---- The command line ---- */

/* Strict decimal integer: no blanks, no trailing characters. */
static int
parse_ll(const char *s, long long *out)
{
    char *end;

    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

/* Strict decimal number: digits, sign, '.', exponent; finite. */
static int
parse_double(const char *s, double *out)
{
    char *end;

    if (*s == '\0' || s[strspn(s, "0123456789.eE+-")] != '\0')
        return -1;
    errno = 0;
    *out = strtod(s, &end);
    return errno != 0 || *end != '\0' || !isfinite(*out) ? -1 : 0;
}

static int
cli_bad(const opt_t *o, const char *arg, char *err, size_t errlen)
{
    char want[160];

    expected(o, 0, want, sizeof want);
    emsg_set(err, errlen, "--%s: expected %s, got '%s'", o->name, want, arg);
    return -1;
}

/* Apply one flag with argument arg (NULL for a flag) to *c. */
static int
apply_cli(cfg_t *c, const opt_t *o, const char *arg, int negated,
          char *err, size_t errlen)
{
    long long iv, t[3];
    double dv;
    const char *p;
    char *end;
    int k;

    switch (o->kind) {
    case K_CONFIG:
        return 0;                       /* loaded before the other flags */
    case K_INT: case K_LONG: case K_UINT: case K_SIZE:
        if (parse_ll(arg, &iv) < 0 || !in_range_ll(o, iv))
            return cli_bad(o, arg, err, errlen);
        store_ll(c, o, iv);
        return 0;
    case K_DOUBLE:
        if (parse_double(arg, &dv) < 0 || !in_range_d(o, dv))
            return cli_bad(o, arg, err, errlen);
        *FIELD(c, o, double) = dv;
        return 0;
    case K_FLAG:
        *FIELD(c, o, int) = !negated;
        return 0;
    case K_GC:
        if (strcmp(arg, "on") == 0)
            c->gc_enabled = 1;
        else if (strcmp(arg, "off") == 0)
            c->gc_enabled = 0;
        else
            return cli_bad(o, arg, err, errlen);
        return 0;
    case K_EXIT:
        if (strcmp(arg, "finalize") == 0)
            c->exit_policy = CFG_EXIT_FINALIZE;
        else if (strcmp(arg, "skip") == 0)
            c->exit_policy = CFG_EXIT_SKIP;
        else
            return cli_bad(o, arg, err, errlen);
        return 0;
    case K_CHOICE:
        if ((k = choice_index(o, arg)) < 0)
            return cli_bad(o, arg, err, errlen);
        *FIELD(c, o, int) = o->values[k];
        return 0;
    case K_THRESH:
        /* Exactly three strict integers separated by single commas. */
        p = arg;
        for (k = 0; k < 3; k++) {
            if (!isdigit((unsigned char)*p))
                return cli_bad(o, arg, err, errlen);
            errno = 0;
            t[k] = strtoll(p, &end, 10);
            if (errno != 0 || !in_range_ll(o, t[k])
                || *end != (k < 2 ? ',' : '\0'))
                return cli_bad(o, arg, err, errlen);
            p = end + 1;
        }
        for (k = 0; k < 3; k++)
            c->gc_threshold[k] = (long)t[k];
        return 0;
    case K_LIST: {
        long vals[CFG_MAX_REFORK];
        int n = 0;

        if (strcmp(arg, "0") == 0) {            /* off */
            c->refork_after_n = 0;
            return 0;
        }
        p = arg;
        for (;;) {
            if (n == CFG_MAX_REFORK || !isdigit((unsigned char)*p))
                return cli_bad(o, arg, err, errlen);
            errno = 0;
            iv = strtoll(p, &end, 10);
            if (errno != 0 || !in_range_ll(o, iv)
                || (*end != ',' && *end != '\0'))
                return cli_bad(o, arg, err, errlen);
            vals[n++] = (long)iv;
            if (*end == '\0')
                break;
            p = end + 1;
        }
        memcpy(FIELD(c, o, long), vals, (size_t)n * sizeof(long));
        c->refork_after_n = n;
        return 0;
    }
    case K_STR: case K_HOST:
        if (*arg == '\0' && o->unset != NULL) {
            arg = NULL;                 /* --out '' unsets */
        } else if (o->char_ok == NULL && !utf8_ok(arg)) {
            emsg_set(err, errlen, "--%s: expected %s in UTF-8, got bytes "
                   "that are not UTF-8", o->name, o->expect);
            return -1;
        } else if (!string_ok(o, arg)) {
            return cli_bad(o, arg, err, errlen);
        }
        if (store_str(c, o, arg) < 0) {
            emsg_set(err, errlen, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }
    return 0;
}

/* Build getopt's tables: every option, its --no- form, help, version. */
static void
getopt_tables(struct option *lo, char **nonames, char *shorts)
{
    size_t i, n = 0;
    char *s = shorts;

    *s++ = '+';                 /* stop at the first positional argument */
    *s++ = ':';                 /* ':' for a missing value, no messages */
    for (i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        int has_arg = o->kind == K_FLAG ? no_argument : required_argument;

        lo[n++] = (struct option){ o->name, has_arg, NULL,
                                   VAL_OPT + (int)i };
        if (o->kind == K_FLAG && !o->cli_only) {
            lo[n++] = (struct option){ nonames[i], no_argument, NULL,
                                       VAL_NO + (int)i };
        }
        if (o->short_name != 0) {
            *s++ = (char)o->short_name;
            if (has_arg == required_argument)
                *s++ = ':';
        }
    }
    lo[n++] = (struct option){ "help", no_argument, NULL, VAL_HELP };
    lo[n++] = (struct option){ "version", no_argument, NULL, VAL_VERSION };
    lo[n] = (struct option){ NULL, 0, NULL, 0 };
    strcpy(s, "hV");
}

/* The option getopt_long returned as val (a short char or a VAL_ code). */
static const opt_t *
opt_by_val(int val, int *negated)
{
    size_t i;

    *negated = 0;
    if (val >= VAL_OPT && val < VAL_OPT + (int)N_OPTS)
        return &opts[val - VAL_OPT];
    if (val >= VAL_NO && val < VAL_NO + (int)N_OPTS) {
        *negated = 1;
        return &opts[val - VAL_NO];
    }
    for (i = 0; i < N_OPTS; i++)
        if (opts[i].short_name != 0 && opts[i].short_name == val)
            return &opts[i];
    return NULL;
}

/* getopt_long returned '?' or ':': say which flag and what is wrong. */
static int
bad_flag(int ch, int argc, char **argv, char *err, size_t errlen)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    const opt_t *o, *near;
    char want[160];
    int negated;

    if (ch == ':') {
        o = opt_by_val(optopt, &negated);
        if (o == NULL) {
            emsg_set(err, errlen, "%s: missing value", arg);
            return -1;
        }
        expected(o, 0, want, sizeof want);
        emsg_set(err, errlen, "--%s: missing value, expected %s", o->name,
               want);
        return -1;
    }
    if (optopt == VAL_HELP || optopt == VAL_VERSION
        || (optopt >= VAL_OPT && opt_by_val(optopt, &negated) != NULL)) {
        /* a long flag given "=value" though it takes none */
        emsg_set(err, errlen, "%.*s: takes no value, got '%s'",
               (int)strcspn(arg, "="), arg, arg);
        return -1;
    }
    if (optopt != 0) {
        emsg_set(err, errlen, "unknown option '-%c' (see --help)", optopt);
        return -1;
    }
    if (strncmp(arg, "--", 2) == 0) {
        char name[64];

        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg + 2, "="),
                 arg + 2);
        if ((near = nearest(name, 0)) != NULL) {
            emsg_set(err, errlen, "unknown or ambiguous option '--%s' "
                   "(did you mean '--%s'?)", name, near->name);
            return -1;
        }
        emsg_set(err, errlen, "unknown or ambiguous option '--%s' "
               "(see --help)", name);
        return -1;
    }
    emsg_set(err, errlen, "unknown option '%s' (see --help)", arg);
    return -1;
}

/*
 * Settings that cannot go together.  The fleet strategies measure copies
 * of a pre-fork heap: with --lazy there is none to copy, compare or
 * refork from.
 */
int
cfg_check(const cfg_t *c, char *err, size_t errlen)
{
    static const struct {
        size_t off;
        const char *name;
    } need_heap[] = {
        { OFF(refork_after_n), "--refork-after" },
        { OFF(identical_pages), "--identical-pages" },
        { OFF(identical_diff), "--identical-diff" },
    };
    if (!c->lazy)
        return 0;
    for (size_t i = 0; i < sizeof need_heap / sizeof need_heap[0]; i++)
        if (*(const int *)(const void *)((const char *)c + need_heap[i].off)) {
            emsg_set(err, errlen, "%s needs a pre-fork heap: not with "
                     "--lazy", need_heap[i].name);
            return -1;
        }
    if (c->max_copied_pct > 0) {
        emsg_set(err, errlen, "--max-copied-pct needs a pre-fork heap: not "
                 "with --lazy");
        return -1;
    }
    return 0;
}

int
cfg_parse_args(cfg_t *c, int argc, char **argv, int *exit_now, char *err,
               size_t errlen)
{
    struct option lo[2 * N_OPTS + 3];
    char nonames[N_OPTS][40];
    char *nonamep[N_OPTS];
    char shorts[2 * N_OPTS + 8];
    const char *config = NULL;
    const opt_t *o;
    cfg_t tmp;
    size_t i;
    int ch, negated, rc;

    *exit_now = 0;
    for (i = 0; i < N_OPTS; i++) {
        snprintf(nonames[i], sizeof nonames[i], "no-%s", opts[i].name);
        nonamep[i] = nonames[i];
    }
    getopt_tables(lo, nonamep, shorts);
    opterr = 0;

    /* Pass 1: syntax, --help and --version, and which file to load. */
    optind = 0;                         /* glibc: full reinitialization */
    while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (ch == '?' || ch == ':')
            return bad_flag(ch, argc, argv, err, errlen);
        if (ch == 'h' || ch == VAL_HELP) {
            cfg_print_help(stdout);
            *exit_now = 1;
            return 0;
        }
        if (ch == 'V' || ch == VAL_VERSION) {
            printf("cowlab %s\n", COWLAB_VERSION);
            *exit_now = 1;
            return 0;
        }
        o = opt_by_val(ch, &negated);
        if (o != NULL && o->kind == K_CONFIG)
            config = optarg;
    }
    if (optind < argc) {
        emsg_set(err, errlen, "unexpected argument '%s' (cowlab takes only "
               "options; see --help)", argv[optind]);
        return -1;
    }

    /* Pass 2: the file, then every other flag over it, in order. */
    if (cfg_copy(&tmp, c) < 0) {
        emsg_set(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (config != NULL
        && (rc = cfg_load_file(&tmp, config, err, errlen)) < 0)
        goto error;
    optind = 0;
    while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if ((o = opt_by_val(ch, &negated)) == NULL)
            continue;
        if ((rc = apply_cli(&tmp, o, optarg, negated, err, errlen)) < 0)
            goto error;
    }
    cfg_free(c);
    *c = tmp;
    return 0;

error:
    cfg_free(&tmp);
    return rc;
}

/* ---- Output ---- */

json_t *
cfg_to_json(const cfg_t *c)
{
    json_t *root = json_object(), *v, *a;
    char key[64];
    const char *s;
    size_t i, k;
    int ok = root != NULL;

    for (i = 0; ok && i < N_OPTS; i++) {
        const opt_t *o = &opts[i];

        switch (o->kind) {
        case K_INT: case K_LONG: case K_UINT: case K_SIZE:
            v = json_integer(load_ll(c, o));
            break;
        case K_DOUBLE:
            v = json_real(*CFIELD(c, o, double));
            break;
        case K_FLAG:
            v = json_boolean(*CFIELD(c, o, int));
            break;
        case K_GC:
            v = json_string(c->gc_enabled ? "on" : "off");
            break;
        case K_EXIT:
            v = json_string(c->exit_policy == CFG_EXIT_SKIP ? "skip"
                                                            : "finalize");
            break;
        case K_CHOICE:
            v = json_string(choice_name(o, *CFIELD(c, o, int)));
            break;
        case K_THRESH:
            v = a = json_array();
            for (k = 0; a != NULL && k < 3; k++)
                if (json_array_append_new(a, json_integer(
                        c->gc_threshold[k])) < 0) {
                    json_decref(a);
                    v = NULL;
                    break;
                }
            break;
        case K_HOST:
            v = json_string(c->host);
            break;
        case K_LIST:
            v = a = json_array();
            for (k = 0; a != NULL && k < (size_t)c->refork_after_n; k++)
                if (json_array_append_new(a, json_integer(
                        CFIELD(c, o, long)[k])) < 0) {
                    json_decref(a);
                    v = NULL;
                    break;
                }
            break;
        case K_CONFIG: case K_STR:
        default:
            s = *CFIELD(c, o, char *);
            v = s != NULL ? json_string(s) : json_null();
            break;
        }
        key_of(o, key, sizeof key);
        ok = v != NULL && json_object_set_new(root, key, v) == 0;
    }
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

const char *
cfg_policy_label(const cfg_t *c, char *buf, size_t len)
{
    char thr[80];
    size_t o = 0;
    int w;

    if (len == 0)
        return "";
    buf[0] = '\0';
    if (c->policy_name != NULL) {
        snprintf(buf, len, "%s", c->policy_name);
        return buf;
    }
/* Append "+part" (or "part" first), stopping quietly when buf is full. */
#define PART(str) do {                                                  \
        w = snprintf(buf + o, len - o, "%s%s", o ? "+" : "", (str));    \
        o += w < 0 ? 0 : (size_t)w;                                     \
        if (o >= len) return buf;                                       \
    } while (0)
    if (c->lazy)
        PART("lazy");
    if (!c->gc_enabled || c->gc_threshold[0] == 0) {
        PART("gc-off");
    } else if (c->gc_threshold[0] != GC_THRESHOLD0_DEFAULT
               || c->gc_threshold[1] != GC_THRESHOLD1_DEFAULT
               || c->gc_threshold[2] != GC_THRESHOLD2_DEFAULT) {
        snprintf(thr, sizeof thr, "thr-%ld-%ld-%ld", c->gc_threshold[0],
                 c->gc_threshold[1], c->gc_threshold[2]);
        PART(thr);
    }
    if (c->warmup)
        PART("warmup");
    if (c->freeze)
        PART("freeze");
    if (c->immortal)
        PART("immortal");
    if (o == 0)
        PART("default");
#undef PART
    return buf;
}

/* The default of an option, as --help shows it. */
static void
default_text(const cfg_t *d, const opt_t *o, char *buf, size_t len)
{
    const char *s;

    switch (o->kind) {
    case K_INT: case K_LONG: case K_UINT: case K_SIZE:
        snprintf(buf, len, "%lld", load_ll(d, o));
        break;
    case K_DOUBLE:
        snprintf(buf, len, "%g", *CFIELD(d, o, double));
        break;
    case K_FLAG:
        snprintf(buf, len, "%s", *CFIELD(d, o, int) ? "on" : "off");
        break;
    case K_GC:
        snprintf(buf, len, "%s", d->gc_enabled ? "on" : "off");
        break;
    case K_EXIT:
        snprintf(buf, len, "%s", d->exit_policy == CFG_EXIT_SKIP
                                 ? "skip" : "finalize");
        break;
    case K_CHOICE:
        snprintf(buf, len, "%s", choice_name(o, *CFIELD(d, o, int)));
        break;
    case K_THRESH:
        snprintf(buf, len, "%ld,%ld,%ld", d->gc_threshold[0],
                 d->gc_threshold[1], d->gc_threshold[2]);
        break;
    case K_HOST:
        snprintf(buf, len, "%s", d->host);
        break;
    case K_LIST:
        snprintf(buf, len, "%s", d->refork_after_n ? "on" : "off");
        break;
    case K_CONFIG: case K_STR:
    default:
        s = *CFIELD(d, o, char *);
        snprintf(buf, len, "%s", s != NULL ? s : o->unset);
        break;
    }
}

void
cfg_print_help(FILE *f)
{
    cfg_t d;
    char left[64], def[64];
    size_t i;

    cfg_defaults(&d);
    fprintf(f,
        "usage: cowlab [options]\n"
        "       cowlab attach --pid MASTER [options]  (measure a running\n"
        "       gunicorn, uWSGI or any prefork server: cowlab attach --help)\n"
        "Prefork HTTP server (like gunicorn/uWSGI) over a CPython-like heap,\n"
        "measuring how much of the heap workers keep sharing copy-on-write\n"
        "under each GC policy.  Version " COWLAB_VERSION ".\n"
        "\n"
        "Options (the config file is read first; flags override it;\n"
        "defaults in brackets):\n");
    for (i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];

        if (o->short_name != 0)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name,
                     o->name, o->meta ? " " : "", o->meta ? o->meta : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name,
                     o->meta ? " " : "", o->meta ? o->meta : "");
        def[0] = '\0';
        if (o->kind != K_CONFIG && !o->cli_only)
            default_text(&d, o, def, sizeof def);
        /* "[default]" after the help if it fits in 79 columns */
        if (def[0] == '\0')
            fprintf(f, "  %-30s%s\n", left, o->help);
        else if (32 + strlen(o->help) + strlen(def) + 3 <= 79)
            fprintf(f, "  %-30s%s [%s]\n", left, o->help, def);
        else
            fprintf(f, "  %-30s%s\n  %-30s[%s]\n", left, o->help, "", def);
    }
    fprintf(f, "  %-30s%s\n", "-h, --help", "show this help and exit");
    fprintf(f, "  %-30s%s\n", "-V, --version", "print the version and exit");
    fprintf(f, "  %-30s%s\n", "--print-columns FILE",
            "a CSV's columns (samples|runs|types), exit");
    fprintf(f,
        "\n"
        "Boolean flags have a --no-FLAG form (e.g. --no-freeze) to undo a\n"
        "config file.  An empty value unsets --workload, --out, --run-id and\n"
        "--policy-name.\n"
        "\n"
        "Config file: a JSON object whose keys are the long flag names with\n"
        "'-' replaced by '_', values of the flag's type; unknown keys are\n"
        "errors.  Example:\n"
        "  {\"workers\": 8, \"gc\": \"on\", \"gc_threshold\": [700, 10, 10],\n"
        "   \"freeze\": true, \"exit\": \"skip\", \"out\": \"results/x\"}\n"
        "\n"
        "Signals (sent to the master):\n"
        "  SIGTERM           graceful drain: workers finish their requests\n"
        "                    and exit within --graceful-timeout, then are\n"
        "                    killed\n"
        "  SIGINT, SIGQUIT   fast stop: workers are stopped at once\n"
        "  SIGHUP            replace the workers one by one\n"
        "  SIGKILL a worker  the master respawns it\n"
        "\n"
        "Exit status: 0 on success, 2 for a bad command line or config.\n");
    cfg_free(&d);
}
