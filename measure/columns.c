/*
 * columns.c -- the column-table machinery of columns.h: a byte buffer,
 * the field formatters, and the header, row and Markdown renderings of a
 * table.  What each file's columns are: output.c.
 */
#include "columns.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void
ms_buf_init(ms_buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void
ms_buf_free(ms_buf_t *b)
{
    if (b->p)
        munmap(b->p, b->cap);
    ms_buf_init(b);
}

void
ms_buf_reset(ms_buf_t *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p)
        b->p[0] = '\0';
}

/*
 * Room for n more bytes and a NUL; 0 or -1 (oom set).  The memory is
 * mapped pages of its own, not malloc's: the master fills buffers after
 * fork(), and a malloc'd chunk may share a page with one of the runtime's
 * large blocks (also malloc'd), which a write would copy in the master,
 * leaving the workers' page looking copied by them.
 */
static int
reserve(ms_buf_t *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : (size_t)sysconf(_SC_PAGESIZE);
    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    void *p = b->p ? mremap(b->p, b->cap, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}


void
ms_buf_add(ms_buf_t *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
ms_buf_puts(ms_buf_t *b, const char *s)
{
    ms_buf_add(b, s, strlen(s));
}

void
ms_buf_printf(ms_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[128];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        ms_buf_add(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
ms_buf_csv_text(ms_buf_t *b, const char *s)
{
    if (s[strcspn(s, ",\"\r\n")] == '\0') {
        ms_buf_puts(b, s);
        return;
    }
    ms_buf_add(b, "\"", 1);
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        ms_buf_add(b, s, (size_t)(q - s) + 1);
        ms_buf_add(b, "\"", 1);         /* an inner quote is doubled */
    }
    ms_buf_puts(b, s);
    ms_buf_add(b, "\"", 1);
}

#define FIELD(c, row, type) \
    (*(const type *)(const void *)((const char *)(row) + (c)->off))

void
ms_fmt_u64(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    uint64_t v = FIELD(c, row, uint64_t);
    if (v != MS_U64_UNSET)
        ms_buf_printf(out, "%llu", (unsigned long long)v);
}

void
ms_fmt_i64(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    int64_t v = FIELD(c, row, int64_t);
    if (v != MS_I64_UNSET)
        ms_buf_printf(out, "%lld", (long long)v);
}

void
ms_fmt_fixed(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    double v = FIELD(c, row, double);
    if (!isnan(v))
        ms_buf_printf(out, "%.*f", c->prec, v);
}

void
ms_fmt_g(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    double v = FIELD(c, row, double);
    if (!isnan(v))
        ms_buf_printf(out, "%g", v);
}

void
ms_fmt_text(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    const char *s = FIELD(c, row, const char *);
    if (s != NULL)
        ms_buf_csv_text(out, s);
}

void
ms_fmt_empty(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    (void)c;
    (void)row;
    (void)out;
}

void
ms_table_header(const ms_table_t *t, ms_buf_t *out)
{
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            ms_buf_add(out, ",", 1);
        ms_buf_puts(out, t->cols[i].name);
    }
    ms_buf_add(out, "\n", 1);
}

void
ms_table_row(const ms_table_t *t, const void *row, ms_buf_t *out)
{
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            ms_buf_add(out, ",", 1);
        t->cols[i].format(&t->cols[i], row, out);
    }
    ms_buf_add(out, "\n", 1);
}

void
ms_table_markdown(const ms_table_t *t, ms_buf_t *out)
{
    ms_buf_puts(out, "| column | unit | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < t->n; i++) {
        const ms_column_t *c = &t->cols[i];
        /* "| name | | meaning |" when there is no unit */
        ms_buf_printf(out, "| %s | %s%s| %s |\n", c->name, c->unit,
                      c->unit[0] ? " " : "", c->meaning);
    }
}
