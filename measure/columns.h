/*
 * columns.h -- column tables: one table per output file, from which its
 * CSV header, every row and the README's column table are made.
 *
 * A column is {name, unit, meaning, formatter, field}: the formatter
 * reads the field at `off` in a row struct and appends its text.  Adding
 * a column is one struct field plus one table line, e.g.
 *
 *     MS_COL_U64(ms_run_t, respawns, "respawns", "",
 *                "workers respawned after dying"),
 *
 * and the MS_COL_* macros refuse (at compile time) a field whose type is
 * not the formatter's.  Numbers are written as C's printf writes them;
 * text is quoted per RFC 4180 when it needs it; a double field holding
 * NaN (MS_UNSET), an integer field holding MS_U64_UNSET or MS_I64_UNSET
 * and a NULL text are written as an empty field: "not measured", never
 * a zero (cowlab attach leaves the columns that need the runtime so).
 */
#ifndef MS_COLUMNS_H
#define MS_COLUMNS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A growable byte buffer in pages of its own (never a page of the
 * runtime's heap, see columns.c).  Appends never fail: running out of
 * memory sets oom, keeps what fitted, and is reported by whoever writes
 * it.  p is NUL-terminated once anything was added. */
typedef struct ms_buf {
    char *p;
    size_t len, cap;
    int oom;
} ms_buf_t;

void ms_buf_init(ms_buf_t *b);
void ms_buf_free(ms_buf_t *b);
/* Empty the buffer (keeps its memory) and clear oom. */
void ms_buf_reset(ms_buf_t *b);
void ms_buf_add(ms_buf_t *b, const char *s, size_t n);
void ms_buf_puts(ms_buf_t *b, const char *s);
void ms_buf_printf(ms_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s as one CSV field (RFC 4180): as is, or in double quotes with inner
 * quotes doubled when it holds a comma, a quote, CR or LF. */
void ms_buf_csv_text(ms_buf_t *b, const char *s);

typedef struct ms_column ms_column_t;
typedef void (*ms_format_fn)(const ms_column_t *c, const void *row,
                             ms_buf_t *out);

struct ms_column {
    const char *name;           /* CSV header; never renamed once shipped */
    const char *unit;           /* "" when it has none */
    const char *meaning;        /* the README's words (Markdown) */
    ms_format_fn format;
    size_t off;                 /* of the field in the row struct */
    int prec;                   /* decimals (ms_fmt_fixed) */
};

typedef struct ms_table {
    const char *file;           /* "samples.csv" */
    const ms_column_t *cols;
    size_t n;
} ms_table_t;

/* The value "not measured" of a double field: written as an empty field. */
#define MS_UNSET NAN
/* The same for integer fields (values no counter reaches). */
#define MS_U64_UNSET UINT64_MAX
#define MS_I64_UNSET INT64_MIN

/* Formatters.  The field types they read: */
/* uint64_t; MS_U64_UNSET: empty */
void ms_fmt_u64(const ms_column_t *c, const void *row, ms_buf_t *out);
/* int64_t; MS_I64_UNSET: empty */
void ms_fmt_i64(const ms_column_t *c, const void *row, ms_buf_t *out);
/* double, prec decimals ("%.*f"); NaN: empty */
void ms_fmt_fixed(const ms_column_t *c, const void *row, ms_buf_t *out);
/* double, "%g"; NaN: empty */
void ms_fmt_g(const ms_column_t *c, const void *row, ms_buf_t *out);
/* const char *, quoted when needed; NULL: empty */
void ms_fmt_text(const ms_column_t *c, const void *row, ms_buf_t *out);
/* always empty (a column filled by someone else, e.g. the runner) */
void ms_fmt_empty(const ms_column_t *c, const void *row, ms_buf_t *out);

/* offsetof(T, f), and a compile error unless T.f has type `type`. */
#define MS_FIELD(T, f, type) \
    (offsetof(T, f) + 0 * sizeof(_Generic(((T *)0)->f, type: 1)))

#define MS_COL_U64(T, f, name, unit, meaning) \
    { name, unit, meaning, ms_fmt_u64, MS_FIELD(T, f, uint64_t), 0 }
#define MS_COL_I64(T, f, name, unit, meaning) \
    { name, unit, meaning, ms_fmt_i64, MS_FIELD(T, f, int64_t), 0 }
#define MS_COL_FIXED(T, f, prec, name, unit, meaning) \
    { name, unit, meaning, ms_fmt_fixed, MS_FIELD(T, f, double), prec }
#define MS_COL_G(T, f, name, unit, meaning) \
    { name, unit, meaning, ms_fmt_g, MS_FIELD(T, f, double), 0 }
#define MS_COL_TEXT(T, f, name, unit, meaning) \
    { name, unit, meaning, ms_fmt_text, MS_FIELD(T, f, const char *), 0 }
#define MS_COL_EMPTY(name, unit, meaning) \
    { name, unit, meaning, ms_fmt_empty, 0, 0 }

/* The header line, comma-separated, with its newline. */
void ms_table_header(const ms_table_t *t, ms_buf_t *out);
/* One row (a struct of the table's row type), with its newline. */
void ms_table_row(const ms_table_t *t, const void *row, ms_buf_t *out);
/* The README's table: "| column | unit | meaning |", one line a column. */
void ms_table_markdown(const ms_table_t *t, ms_buf_t *out);

#endif
