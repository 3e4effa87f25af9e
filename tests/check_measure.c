/* check_measure.c -- tests for the measurement layer: the column tables
 * are the README's and keep their names and number formats, free text is
 * quoted (RFC 4180), a sampling round is one write(), a SIGKILLed master
 * leaves whole rows, copies by cause add up to the independently sampled
 * count, teardown copies, the type census, the sampler's self-limiting
 * interval, and every answer a worker sent is counted. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "census.h"
#include "output.h"
#include "sampler.h"
#include "master.h"
#include "mem.h"
#include "procstat.h"
#include "support.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64], outdir[128];

/* ---- documented schema -------------------------------------------------- */

/* b's text as a malloc'd string; b is freed. */
static char *
take(ms_buf_t *b)
{
    ck_assert(!b->oom);
    char *s = strdup(b->p ? b->p : "");
    ck_assert_ptr_nonnull(s);
    ms_buf_free(b);
    return s;
}

/* The lines of README.md between `marker` and the next "<!-- end -->",
 * malloc'd. */
static char *
readme_block(const char *marker)
{
    FILE *f = fopen("README.md", "r");
    ck_assert_msg(f != NULL, "README.md not found (run from the repo root)");
    ms_buf_t b;
    ms_buf_init(&b);
    ms_buf_puts(&b, "");
    char line[4096];
    int in = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        if (!in && strncmp(line, marker, strlen(marker)) == 0
            && line[strlen(marker)] == '\n') {
            in = found = 1;
            continue;
        }
        if (in && strcmp(line, "<!-- end -->\n") == 0)
            break;
        if (in)
            ms_buf_puts(&b, line);
    }
    fclose(f);
    ck_assert_msg(found, "README.md has no %s", marker);
    return take(&b);
}

START_TEST(measure_readme_tables_are_the_column_tables)
{
    const ms_table_t *t[] = { &ms_samples_table, &ms_runs_table,
                              &ms_types_table, &ms_totals_table,
                              &ms_diffs_table, &ms_routes_table,
                              &ms_kinds_table };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char marker[64];
        snprintf(marker, sizeof marker, "<!-- %s columns -->", t[i]->file);
        char *readme = readme_block(marker);
        ms_buf_t md;
        ms_buf_init(&md);
        ms_table_markdown(t[i], &md);
        ck_assert_msg(strcmp(readme, md.p) == 0,
                      "README.md's %s table is not the server's: run "
                      "`make readme-columns`\n--- README\n%s--- table\n%s",
                      t[i]->file, readme, md.p);
        free(readme);
        ms_buf_free(&md);
    }
}
END_TEST

static char *
header_of(const ms_table_t *t)
{
    ms_buf_t b;
    ms_buf_init(&b);
    ms_table_header(t, &b);
    return take(&b);
}

/* Users' plots and scripts/runner.py read these names in this order:
 * columns are only ever appended. */
START_TEST(measure_columns_keep_their_names)
{
    const char *samples =
        "run_id,policy,worker,pid,t_ms,requests,rss_kb,pss_kb,"
        "shared_clean_kb,shared_dirty_kb,private_clean_kb,private_dirty_kb,"
        "minflt,majflt,heap_pages,heap_copied_pages,heap_shared_pct,"
        "gc_collections_0,gc_collections_1,gc_collections_2,gc_time_us,"
        "faults_gc,faults_request,faults_other,"      /* DESIGN.md's list */
        "sample_ms,copied_by_gc,copied_by_request,copied_unattributed,"
        "gc_measured,copied_by_master,heap_new_pages,heap_shared_pages";
    const char *runs =
        "run_id,policy,workers,heap_objects,heap_mb,build_ms,fork_ms,requests,"
        "rps,p50_ms,p99_ms,heap_shared_pct,private_dirty_kb,teardown_ms,"
        "faults_teardown,exit,scale,workload,gc,gc_threshold,freeze,immortal,"
        "lazy,respawns,duration_s,copied_by_teardown,sample_ms";
    const char *types =
        "run_id,policy,worker,pid,type,objects,pages,copied_pages,"
        "identical_pages";
    char *h = header_of(&ms_samples_table);
    ck_assert_int_eq(strncmp(h, samples, strlen(samples)), 0);
    ck_assert_str_eq(h + strlen(samples), ",heap_released_pages,"
                     "role,refork_generation,heap_identical_pages,"
                     "ksm_merging_pages,heap_ksm_pages,heap_moved_pages,"
                     "attribution,written_pages,written_requests,wset_scans,"
                     "wset_skipped,wset_ms,faults_sampling,side_pages,"
                     "side_copied_pages,rc_table_entries,rc_table_bytes\n");
    free(h);
    h = header_of(&ms_runs_table);
    ck_assert_int_eq(strncmp(h, runs, strlen(runs)), 0);
    ck_assert_str_eq(h + strlen(runs),
                     ",responses_4xx,responses_5xx,copied_by_master,python,"
                     "prefork_gc,fork_gc_count_0,fork_gc_count_1,"
                     "fork_gc_count_2,fork_long_lived_pending,"
                     "fork_long_lived_total,first_full_gc_request,"
                     "workers_full_gc,teardown_collections,"
                     "heap_released_pages,"
                     "refork_generation,reforks,recycles,ksm,ksmd_cpu_s,"
                     "ksm_pages_sharing,heap_identical_pages,cpu_s,"
                     "attribution,written_pages,written_requests,"
                     "written_per_request,top_copy_route,top_copy_route_pct,"
                     "wset_check_pages,gc_layout,refcount,warmup,"
                     "warmup_collected,warmup_promoted,warmup_hashes,"
                     "warmup_pages_released,warmup_frozen,warmup_ms,"
                     "gc_inline_bytes,gc_side_bytes,gc_side_pages,"
                     "gc_objects,gc_bytes_per_object,rc_table_entries,"
                     "rc_table_bytes,side_pages,side_copied_pages\n");
    free(h);
    h = header_of(&ms_types_table);
    ck_assert_int_eq(strncmp(h, types, strlen(types)), 0);
    ck_assert_str_eq(h + strlen(types), "\n");
    free(h);
    ck_assert_ptr_eq(ms_table_find("runs"), &ms_runs_table);
    ck_assert_ptr_eq(ms_table_find("samples.csv"), &ms_samples_table);
    ck_assert_ptr_eq(ms_table_find("types"), &ms_types_table);
    ck_assert_ptr_eq(ms_table_find("routes.csv"), &ms_routes_table);
    ck_assert_ptr_eq(ms_table_find("kinds"), &ms_kinds_table);
    h = header_of(&ms_kinds_table);
    ck_assert_str_eq(h, "run_id,policy,worker,kind,copied_pages,"
                     "copied_by_request,copied_by_gc,copied_by_teardown\n");
    free(h);
    h = header_of(&ms_routes_table);
    ck_assert_str_eq(h, "run_id,policy,worker,route,requests,copied_pages,"
                     "copied_by_gc,written_requests,written_pages,"
                     "written_per_request\n");
    free(h);
    ck_assert_ptr_null(ms_table_find("run"));
    ck_assert_ptr_null(ms_table_find("meta.json"));
}
END_TEST

static char *
row_of(const ms_table_t *t, const void *row)
{
    ms_buf_t b;
    ms_buf_init(&b);
    ms_table_row(t, row, &b);
    return take(&b);
}

/* The tables write every number as the printf formats of the writers they
 * replaced did (the formats below): figures do not change. */
START_TEST(measure_rows_keep_their_number_formats)
{
    char want[2048];
    ms_sample_t s = {
        .run_id = "r1", .policy = "freeze+immortal", .worker = 3,
        .pid = 4242, .t_ms = 1234.56, .requests = 2500, .rss_kb = 120000,
        .pss_kb = 33000, .shared_clean_kb = 1, .shared_dirty_kb = 90000,
        .private_clean_kb = 0, .private_dirty_kb = 3300, .minflt = 51234,
        .majflt = 0, .heap_pages = 28098, .heap_copied_pages = 21372,
        .heap_shared_pct = 23.93764, .gc_collections_0 = 104,
        .gc_collections_1 = 9, .gc_collections_2 = 1, .gc_time_us = 987654,
        .faults_gc = 7, .faults_request = 22056, .faults_other = 103,
        .sample_ms = 517, .copied_by_gc = 5, .copied_by_request = 21360,
        .copied_unattributed = 2, .gc_measured = 3,
        .copied_by_master = 4, .heap_new_pages = 0,
        .heap_shared_pages = MS_U64_UNSET, .heap_released_pages = 11,
        .role = "worker", .refork_generation = 1,
        .heap_identical_pages = 10071, .ksm_merging_pages = MS_UNSET,
        .heap_ksm_pages = MS_UNSET, .heap_moved_pages = 0,
        .attribution = "write-sets", .written_pages = 1700,
        .written_requests = 2, .wset_scans = 40, .wset_skipped = 960,
        .wset_ms = 12.345, .faults_sampling = 77, .side_pages = 812,
        .side_copied_pages = 3, .rc_table_entries = 5000,
        .rc_table_bytes = 131072,
    };
    /* fleet columns: unmeasured ones (MS_UNSET) are empty */
    snprintf(want, sizeof want,
             "%s,%s,%u,%d,%.1f,%llu,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,"
             "%zu,%zu,%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%ld,"
             "%u,%llu,%llu,%llu,%llu,4,0,,11,worker,1,10071,,,0,"
             "write-sets,1700,2,40,960,12.3,77,812,3,5000,131072\n",
             "r1", "freeze+immortal", 3u, 4242, 1234.56, 2500ull, 120000L,
             33000L, 1L, 90000L, 0L, 3300L, 51234L, 0L, (size_t)28098,
             (size_t)21372, 23.93764, 104ull, 9ull, 1ull, 987654ull, 7ull,
             22056ull, 103L, 517u, 5ull, 21360ull, 2ull, 3ull);
    char *got = row_of(&ms_samples_table, &s);
    ck_assert_str_eq(got, want);
    free(got);
    /* smaps_rollup not read this round: its six columns are empty */
    s.rss_kb = s.pss_kb = s.shared_clean_kb = s.shared_dirty_kb
        = s.private_clean_kb = s.private_dirty_kb = MS_I64_UNSET;
    got = row_of(&ms_samples_table, &s);
    ck_assert_ptr_nonnull(strstr(got, ",2500,,,,,,,51234,0,"));
    free(got);
    s.private_dirty_kb = 3300;

    ms_run_t r = {
        .run_id = "r1", .policy = "default", .workers = 4,
        .heap_objects = 1001421, .heap_mb = 109.7578, .build_ms = 2345.67,
        .fork_ms = 3.456, .requests = 10000, .rps = 2171.94,
        .heap_shared_pct = 23.9312, .private_dirty_kb = 88470.5,
        .teardown_ms = 396.1234, .faults_teardown = 6455.5, .exit = "finalize",
        .scale = 0.05, .workload = "webapp", .gc = "on",
        .gc_threshold = { 700, 10, 10 }, .freeze = 0, .immortal = 1,
        .lazy = 0, .respawns = 2, .duration_s = 4.606, .copied_by_teardown
        = 6202.25, .sample_ms = 250, .responses_4xx = 7, .responses_5xx = 1,
        .copied_by_master = MS_UNSET, .python = "3.11",
        .prefork_gc = "import", .fork_gc_count = { 572, 2, 7 },
        .fork_long_lived_pending = 58884, .fork_long_lived_total = 292689,
        .first_full_gc_request = 290.25, .workers_full_gc = 3,
        .teardown_collections = 4, .heap_released_pages = 12.6,
        .refork_generation = 2, .reforks = 2, .recycles = 5, .ksm = 1,
        .ksmd_cpu_s = 12.3456, .ksm_pages_sharing = 10071,
        .heap_identical_pages = MS_UNSET, .cpu_s = 99.5,
        .attribution = "write-sets", .written_pages = 900,
        .written_requests = 3, .written_per_request = 300,
        .top_copy_route = "/api/items", .top_copy_route_pct = 84.7,
        .wset_check_pages = 0, .gc_layout = "side", .refcount = "split",
        .warmup = 1, .warmup_collected = 17, .warmup_promoted = 1200,
        .warmup_hashes = 3000, .warmup_pages_released = 4,
        .warmup_frozen = 70000, .warmup_ms = 12.34,
        .gc_inline_bytes = 560000, .gc_side_bytes = 1679360,
        .gc_side_pages = 410, .gc_objects = 70000,
        .gc_bytes_per_object = 31.99086, .rc_table_entries = 5000.4,
        .rc_table_bytes = 131072, .side_pages = 812,
        .side_copied_pages = 2.5,
    };
    snprintf(want, sizeof want,
             "%s,%s,%d,%zu,%.2f,%.1f,%.2f,%llu,%.1f,,,%.3f,%.0f,%.3f,%.0f,"
             "%s,%g,%s,%s,%ld-%ld-%ld,%d,%d,%d,%u,%.2f,%.0f,%u,7,1,,"
             "3.11,import,572,2,7,58884,292689,290.2,3,4.0,13,"
             "2,2,5,1,12.346,10071,,99.500,"
             "write-sets,900,3,300.0,/api/items,84.7,0,side,split,1,17,"
             "1200,3000,4,70000,12.3,560000,1679360,410,70000,31.99,5000,"
             "131072,812,2.5\n",
             "r1", "default", 4, (size_t)1001421, 109.7578, 2345.67, 3.456,
             10000ull, 2171.94, 23.9312, 88470.5, 396.1234, 6455.5,
             "finalize", 0.05, "webapp", "on", 700L, 10L, 10L, 0, 1, 0, 2u,
             4.606, 6202.25, 250u);
    got = row_of(&ms_runs_table, &r);
    ck_assert_str_eq(got, want);
    free(got);
    /* no worker reported a teardown: those three fields are empty */
    r.teardown_ms = r.faults_teardown = r.copied_by_teardown = MS_UNSET;
    r.scale = 1;
    got = row_of(&ms_runs_table, &r);
    ck_assert_ptr_nonnull(strstr(got, ",88470,,,finalize,1,webapp,"));
    ck_assert_ptr_nonnull(strstr(got, ",4.61,,250,7,1,,3.11,"));
    free(got);
    /* what cowlab attach cannot know is empty, never 0 */
    r.heap_objects = MS_U64_UNSET;
    r.gc_threshold[0] = MS_I64_UNSET;
    r.copied_by_master = 12.4;
    got = row_of(&ms_runs_table, &r);
    ck_assert_ptr_nonnull(strstr(got, "r1,default,4,,109.76,"));
    ck_assert_ptr_nonnull(strstr(got, ",webapp,on,,0,1,0,"));
    ck_assert_ptr_nonnull(strstr(got, ",4.61,,250,7,1,12,3.11,"));
    /* nor the runtime's mode and collector (cowlab attach's rows) */
    r.python = r.prefork_gc = NULL;
    r.fork_gc_count[0] = r.fork_gc_count[1] = r.fork_gc_count[2]
        = MS_I64_UNSET;
    r.fork_long_lived_pending = r.fork_long_lived_total = MS_U64_UNSET;
    r.workers_full_gc = MS_U64_UNSET;
    r.first_full_gc_request = r.teardown_collections = MS_UNSET;
    r.heap_released_pages = MS_UNSET;
    free(got);
    got = row_of(&ms_runs_table, &r);
    ck_assert_ptr_nonnull(strstr(got, ",7,1,12,,,,,,,,,,,,2,2,5,1,12.346,"
                                      "10071,,99.500,write-sets,"));
    free(got);
    /* nor the designs (18 columns, all empty) */
    r.gc_layout = r.refcount = NULL;
    r.warmup = MS_U64_UNSET;
    r.warmup_collected = r.warmup_promoted = r.warmup_hashes = MS_UNSET;
    r.warmup_pages_released = r.warmup_frozen = r.warmup_ms = MS_UNSET;
    r.gc_inline_bytes = r.gc_side_bytes = r.gc_side_pages = MS_UNSET;
    r.gc_objects = r.gc_bytes_per_object = MS_UNSET;
    r.rc_table_entries = r.rc_table_bytes = MS_UNSET;
    r.side_pages = r.side_copied_pages = MS_UNSET;
    got = row_of(&ms_runs_table, &r);
    ck_assert_ptr_nonnull(strstr(got, ",84.7,0,,,,,,,,,,,,,,,,,,\n"));
    free(got);
    s.minflt = MS_I64_UNSET;
    got = row_of(&ms_samples_table, &s);
    ck_assert_ptr_nonnull(strstr(got, ",3300,,0,28098,"));
    free(got);

    ms_type_row_t t = { .run_id = "r1", .policy = "lazy", .worker = 1,
                        .pid = 77, .type = "object(__slots__)",
                        .objects = 12, .pages = 5, .copied_pages = 4,
                        .identical_pages = MS_UNSET };
    got = row_of(&ms_types_table, &t);
    ck_assert_str_eq(got, "r1,lazy,1,77,object(__slots__),12,5,4,\n");
    free(got);
}
END_TEST

static void
ck_csv_text(const char *in, const char *want)
{
    ms_buf_t b;
    ms_buf_init(&b);
    ms_buf_puts(&b, "");
    ms_buf_csv_text(&b, in);
    ck_assert_str_eq(b.p, want);
    ms_buf_free(&b);
}

START_TEST(measure_text_is_quoted_rfc4180)
{
    ck_csv_text("webapp", "webapp");
    ck_csv_text("", "");
    ck_csv_text("a,b", "\"a,b\"");
    ck_csv_text("say \"hi\"", "\"say \"\"hi\"\"\"");
    ck_csv_text("\"", "\"\"\"\"");
    ck_csv_text("cr\rlf\n", "\"cr\rlf\n\"");
    ck_csv_text("dir/wl,\"x\".json", "\"dir/wl,\"\"x\"\".json\"");
    ck_csv_text("a;b 'c' \\d", "a;b 'c' \\d");    /* nothing to quote */
    /* in a row: the field stays one field */
    ms_run_t r = { .run_id = "r", .policy = "p", .exit = "skip",
                   .workload = "w,\"1\"", .gc = "on",
                   .teardown_ms = MS_UNSET, .faults_teardown = MS_UNSET,
                   .copied_by_teardown = MS_UNSET };
    char *got = row_of(&ms_runs_table, &r);
    ck_assert_ptr_nonnull(strstr(got, ",skip,0,\"w,\"\"1\"\"\",on,0-0-0,"));
    free(got);
}
END_TEST

/* Messages waiting on a SOCK_SEQPACKET socket (one per write()), and the
 * bytes they hold. */
static int
messages(int fd, size_t *bytes)
{
    static char buf[1 << 20];
    int n = 0;
    ssize_t k;
    *bytes = 0;
    while ((k = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        n++;
        *bytes += (size_t)k;
    }
    ck_assert(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    return n;
}

/* A sampling round of 256 workers goes to the kernel in one write(), so a
 * killed master cannot leave part of a round.  The control writes the same
 * rows the way the server did before (stdio with setvbuf's size and no
 * buffer of its own): several writes. */
START_TEST(measure_round_is_one_write)
{
    enum { WORKERS = 256 };            /* -w at most */
    int sv[2], big = 1 << 20;
    size_t bytes;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ms_csv_t w;
    ck_assert_int_eq(ms_csv_open_fd(&w, sv[0], &ms_samples_table, 1), 0);
    char *h = header_of(&ms_samples_table);
    ck_assert_int_eq(messages(sv[1], &bytes), 1);       /* the header */
    ck_assert_uint_eq(bytes, strlen(h));
    free(h);
    ms_buf_t round;
    ms_buf_init(&round);
    for (int i = 0; i < WORKERS; i++) {
        ms_sample_t s = { .run_id = "20240101-120000-12345",
                          .policy = "freeze+immortal", .worker = (uint64_t)i,
                          .pid = 100000 + i, .t_ms = 123456.7,
                          .requests = 2500, .rss_kb = 123456,
                          .pss_kb = 34567, .heap_pages = 28098,
                          .heap_copied_pages = 21372,
                          .heap_shared_pct = 23.9 };
        ms_csv_add(&w, &s);
        ms_table_row(&ms_samples_table, &s, &round);
    }
    ck_assert_uint_gt(round.len, 16384);   /* several of stdio's buffers */
    ck_assert_int_eq(ms_csv_flush(&w), 0);
    ck_assert_uint_eq(w.writes, 1);
    ck_assert_int_eq(messages(sv[1], &bytes), 1);
    ck_assert_uint_eq(bytes, round.len);
    ck_assert_int_eq(ms_csv_flush(&w), 0);          /* nothing: no write */
    ck_assert_uint_eq(w.writes, 1);

    /* control: the old way */
    FILE *f = fdopen(dup(sv[0]), "w");
    ck_assert_ptr_nonnull(f);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    for (const char *p = round.p, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        fwrite(p, 1, (size_t)(nl - p) + 1, f);
    fflush(f);
    int n = messages(sv[1], &bytes);
    printf("measure: a round of %d rows, %zu bytes: 1 write; stdio: %d\n",
           WORKERS, round.len, n);
    ck_assert_uint_eq(bytes, round.len);
    ck_assert_int_gt(n, 1);
    fclose(f);
    ms_buf_free(&round);
    ck_assert_int_eq(ms_csv_close(&w), 0);
    close(sv[1]);
}
END_TEST

/* A write error is returned, never swallowed; the round is dropped. */
START_TEST(measure_write_errors_are_reported)
{
    ms_csv_t w;
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        TS_SKIP("no /dev/full");
    ck_assert_int_eq(ms_csv_open_fd(&w, fd, &ms_types_table, 1), -ENOSPC);
    ck_assert_int_eq(ms_csv_open_fd(&w, open("/dev/full", O_WRONLY),
                                    &ms_types_table, 0), 0);
    ms_type_row_t t = { .run_id = "r", .policy = "p", .type = "str" };
    ms_csv_add(&w, &t);
    ck_assert_int_eq(ms_csv_flush(&w), -ENOSPC);
    ck_assert_uint_eq(w.buf.len, 0);
    ck_assert_int_eq(ms_csv_close(&w), 0);
    ck_assert_int_eq(ms_csv_open(&w, "/nonexistent-dir/x.csv",
                                 &ms_types_table), -ENOENT);
}
END_TEST

START_TEST(measure_sampler_keeps_to_one_percent)
{
    ck_assert_uint_eq(ms_sample_interval(250, 1.0, 1), 250);
    ck_assert_uint_eq(ms_sample_interval(250, 2.5, 1), 250);
    ck_assert_uint_eq(ms_sample_interval(250, 10.0, 1), 1000);
    ck_assert_uint_eq(ms_sample_interval(250, 0.1, 1), 250); /* back down */
    ck_assert_uint_eq(ms_sample_interval(250, 1e9, 1), 600000);
    ck_assert_uint_eq(ms_sample_interval(250, 10.0, 5), 250);
    ck_assert_uint_eq(ms_sample_interval(250, 20.0, 5), 400);
    ck_assert_uint_eq(ms_sample_interval(250, 1e6, 0), 250); /* no limit */
}
END_TEST

START_TEST(measure_sampler_rounds_and_deadlines)
{
    const uint64_t ms = 1000000u;
    ms_sampler_t s;
    ms_sampler_init(&s, 250, 1.0, 1000 * ms);
    ck_assert_uint_eq(s.interval_ms, 250);
    ck_assert(!ms_sampler_due(&s, 1249 * ms));
    ck_assert(ms_sampler_due(&s, 1250 * ms));
    ck_assert_int_eq(ms_sampler_wait_ms(&s, 1000 * ms), 251);
    ck_assert_int_eq(ms_sampler_wait_ms(&s, 1250 * ms), 0);
    /* a round of 10 ms of CPU at 1%: 1 s from the round's end */
    ck_assert_uint_eq(ms_sampler_done(&s, 10.0, 1300 * ms), 250);
    ck_assert_uint_eq(s.interval_ms, 1000);
    ck_assert(!ms_sampler_due(&s, 2299 * ms));
    ck_assert(ms_sampler_due(&s, 2300 * ms));
    /* cheap again: back to the configured interval */
    ck_assert_uint_eq(ms_sampler_done(&s, 0.5, 2400 * ms), 1000);
    ck_assert_uint_eq(s.interval_ms, 250);
    ck_assert_int_eq(ms_sampler_wait_ms(&s, 2400 * ms), 251);
}
END_TEST

/* ---- the heap's pages: every range, or an error ---------------------- */

/*
 * The master once listed at most 65,536 heap ranges and silently dropped
 * the rest.  Large blocks now come from chunks the runtime maps itself,
 * each range a mapping of its own, and the kernel bounds a process's
 * mappings (vm.max_map_count, 65,530 by default) below that old limit;
 * so the test makes as many separate ranges as it affords and checks the
 * snapshot takes every one: 2 x MANY blocks too big to share a chunk,
 * every other one freed (its chunk unmapped), so MANY chunks lie apart
 * whatever addresses the kernel chose.
 */
enum { MANY = 256 };

START_TEST(measure_snapshot_takes_every_range)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("large blocks come from malloc in the RT_MALLOC_BYPASS build, "
            "not from chunks of the runtime's own");
#endif
    static void *blocks[2 * MANY];
    ps_snap_t *snap = NULL;
    size_t nr, pg = (size_t)sysconf(_SC_PAGESIZE), total = 0;

    for (size_t i = 0; i < 2 * MANY; i++) {
        blocks[i] = mem_alloc(MEM_ARENA_SIZE / 2 + pg);  /* a chunk each */
        ck_assert_ptr_nonnull(blocks[i]);
    }
    for (size_t i = 0; i < 2 * MANY; i += 2)
        mem_free(blocks[i]);
    long n = mem_ranges(NULL, 0);
    ck_assert_int_ge(n, MANY);
    ck_assert_int_eq(srv_snapshot_heap(&snap), 0);
    const ps_range_t *r = ps_snap_ranges(snap, &nr);
    ck_assert_uint_eq(nr, (size_t)n);               /* all of them */
    for (size_t i = 0; i < nr; i++)
        total += (r[i].end - r[i].start) / pg;
    ck_assert_uint_eq(ps_snap_total_pages(snap), total);
    ck_assert_uint_ge(ps_snap_pages(snap), MANY);   /* each block's page */
    ps_snap_free(snap);
    for (size_t i = 1; i < 2 * MANY; i += 2)
        mem_free(blocks[i]);
}
END_TEST

/* Out of memory while listing the ranges: an error, not an empty heap. */
START_TEST(measure_snapshot_out_of_memory)
{
    void *small = mem_alloc(64), *large = mem_alloc(100000);
    ps_snap_t *snap = NULL;

    ck_assert(small != NULL && large != NULL);
    for (long n = 1; n <= 2; n++) {         /* mem_ranges() twice */
        mem_fail_after(n);
        ck_assert_int_eq(srv_snapshot_heap(&snap), -ENOMEM);
        mem_fail_after(0);
        ck_assert_ptr_null(snap);
    }
    mem_fail_after(3);
    ck_assert_int_eq(srv_snapshot_heap(&snap), 0);
    mem_fail_after(0);
    ck_assert_uint_ge(ps_snap_pages(snap), 2);
    ps_snap_free(snap);
    mem_free(small);
    mem_free(large);
}
END_TEST

static void mem_setup(void)    { ck_assert_int_eq(mem_init(), 0); }
static void mem_teardown(void) { mem_fini(); }

/* ---- running the server ------------------------------------------------- */

static void
start(const char *const *args)
{
    const char *base[] = { "--out", outdir, NULL };
    ck_assert_msg(ts_server_start(&S, base, args) == 0,
                  "server did not start");
}

static void setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "measure"), 0);
    snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
}

static void teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static int
get(const char *path)
{
    return ts_get(S.port, path, NULL, 0);
}

/* Send bytes on a new connection; the status of the answer. */
static int
raw(const char *bytes)
{
    int fd = ts_connect(S.port, 0);
    ck_assert_int_ge(fd, 0);
    ts_send_str(fd, bytes);
    int st = ts_read_response(fd, NULL, 0);
    ts_close(fd);
    return st;
}

/* GET path on an open keep-alive connection. */
static int
ask(int fd, const char *path, char *body, size_t cap)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
                     path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    return ts_read_response(fd, body, cap);
}

static long
json_long(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(body, k);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    return strtol(p + strlen(k), NULL, 10);
}

static int
wait_exit(void)
{
    int status = ts_server_wait(&S);
    ck_assert_int_ne(status, -1);
    return status;
}

/* outdir/name as CSV: whole rows, each with the header's fields. */
static size_t
csv_load(ts_csv_t *c, const char *name)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s", err);
    return c->nrows;
}

START_TEST(measure_sigkill_master_leaves_whole_rows)
{
    const char *args[] = { "-w", "3", "--scale", "0.05", "--sample-ms", "20",
                           NULL };
    start(args);
    for (int i = 0; i < 60; i++)
        get(i % 2 ? "/api/items" : "/api/user");
    ts_sleep_ms(300);
    kill(S.pid, SIGKILL);
    int status = wait_exit();
    ck_assert(WIFSIGNALED(status));
    ts_csv_t c;
    ck_assert_uint_ge(csv_load(&c, "samples.csv"), 3);
    ts_csv_free(&c);
}
END_TEST

START_TEST(measure_copies_by_cause_add_up)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    /* Every collection bracketed: the worker's own attribution must add
     * up to what the master counts independently from outside. */
    /* 3.11: every object mortal, so finalize writes every page (3.12's
     * immortal interned strings stay shared). */
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "25",
                           "--attribution", "pagemap",
                           "--pagemap-gc-fraction", "1", "--exit", "finalize",
                           "--python", "3.11", NULL };
    start(args);
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(get(i % 3 ? "/api/user" : "/api/items"), 200);
    ts_sleep_ms(1100);              /* the next request closes the gap */
    ck_assert_int_eq(get("/static"), 200);
    ts_sleep_ms(400);               /* quiet: samples see a still heap */
    kill(S.pid, SIGTERM);
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t c;
    size_t n = csv_load(&c, "samples.csv");
    ck_assert_uint_ge(n, 3);
    size_t last = n - 1;
    long copied = ts_csv_long(&c, last, "heap_copied_pages");
    long gc = ts_csv_long(&c, last, "copied_by_gc");
    long req = ts_csv_long(&c, last, "copied_by_request");
    long un = ts_csv_long(&c, last, "copied_unattributed");
    long heap_pages = ts_csv_long(&c, last, "heap_pages");
    printf("measure: %ld copied = %ld gc + %ld request + %ld unattributed "
           "(%ld collections bracketed of %ld)\n", copied, gc, req, un,
           ts_csv_long(&c, last, "gc_measured"),
           ts_csv_long(&c, last, "gc_collections_0")
           + ts_csv_long(&c, last, "gc_collections_1")
           + ts_csv_long(&c, last, "gc_collections_2"));
    ck_assert_int_gt(copied, 0);
    ck_assert_int_eq(gc + req + un, copied);
    /* Unattributed: pages copied before the worker's first read of its
     * pagemap; none (the master writes no page it shares after fork). */
    ck_assert_int_eq(un, 0);
    ck_assert_int_eq(ts_csv_long(&c, last, "gc_measured"),
                     ts_csv_long(&c, last, "gc_collections_0")
                     + ts_csv_long(&c, last, "gc_collections_1")
                     + ts_csv_long(&c, last, "gc_collections_2"));
    /* faults_other is the rest of minflt, clamped at 0: on a still
     * worker the clamp must not be what makes it add up. */
    long minflt = ts_csv_long(&c, last, "minflt");
    long fgc = ts_csv_long(&c, last, "faults_gc");
    long freq = ts_csv_long(&c, last, "faults_request");
    long fsam = ts_csv_long(&c, last, "faults_sampling");
    ck_assert_int_gt(fgc + freq, 0);
    ck_assert_int_ge(minflt, fgc + freq + fsam);
    ck_assert_int_eq(ts_csv_long(&c, last, "faults_other"),
                     minflt - fgc - freq - fsam);
    ts_csv_free(&c);
    ts_csv_t r;
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    long td = ts_csv_long(&r, 0, "copied_by_teardown");
    /* finalize writes nearly every page the worker had not copied yet
     * (not all: a class's 960-byte block spans pages, and teardown
     * writes only its first bytes) */
    printf("measure: teardown copied %ld of the %ld pages still shared\n",
           td, heap_pages - copied);
    ck_assert_int_ge(td, (heap_pages - copied) * 7 / 10);
    ck_assert_int_le(td, heap_pages - copied);
    ts_csv_free(&r);
}
END_TEST

/* A worker recycled by --max-requests is not sampled while it stops:
 * its finalize writes (and unmaps) most of the heap, which a sample
 * taken then would show as a collapse of heap_shared_pct.  Fails when
 * stopping workers are sampled. */
START_TEST(measure_stopping_workers_not_sampled)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "10",
                           "--sample-budget", "0", "--max-requests", "10",
                           "--exit", "finalize", "--python", "3.11",
                           "--duration", "4", NULL };
    start(args);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(get("/static"), 200);     /* five hot reads each */
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t c;
    size_t n = csv_load(&c, "samples.csv");
    ck_assert_uint_ge(n, 10);
    for (size_t i = 0; i < n; i++) {
        double shared = ts_csv_double(&c, i, "heap_shared_pct");
        ck_assert_msg(shared > 80.0, "row %zu: worker %ld sampled at %.1f%% "
                      "shared (its teardown)", i, ts_csv_long(&c, i, "pid"),
                      shared);
    }
    ts_csv_free(&c);
    ts_csv_t r;
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    ck_assert_int_ge(ts_csv_long(&r, 0, "respawns"), 1);  /* it recycled */
    ts_csv_free(&r);
}
END_TEST

START_TEST(measure_skip_exit_copies_nothing)
{
    const char *args[] = { "-w", "2", "--scale", "0.05", "--exit", "skip",
                           "--duration", "1", NULL };
    start(args);
    get("/api/items");
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t r;
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    ck_assert_int_eq(ts_csv_long(&r, 0, "copied_by_teardown"), 0);
    ck_assert_int_eq(ts_csv_long(&r, 0, "faults_teardown"), 0);
    /* reported (not empty); its size is the machine's, not a behaviour */
    ck_assert(strtod(ts_csv_get(&r, 0, "teardown_ms"), NULL) >= 0.0);
    ts_csv_free(&r);
}
END_TEST

START_TEST(measure_type_census_counts_every_object)
{
    const char *args[] = { "-w", "2", "--scale", "0.05", "--type-census",
                           "--duration", "1.5", "--exit", "skip", NULL };
    start(args);
    for (int i = 0; i < 30; i++)
        get("/api/items");
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t t, r;
    size_t n = csv_load(&t, "types.csv");
    ck_assert_uint_ge(n, 10);
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    long heap_objects = ts_csv_long(&r, 0, "heap_objects");
    long objects[2] = { 0, 0 };
    int seen_str = 0;
    for (size_t i = 0; i < n; i++) {
        long w = ts_csv_long(&t, i, "worker");
        ck_assert(w == 0 || w == 1);
        objects[w] += ts_csv_long(&t, i, "objects");
        ck_assert_int_le(ts_csv_long(&t, i, "copied_pages"),
                         ts_csv_long(&t, i, "pages"));
        seen_str |= strcmp(ts_csv_get(&t, i, "type"), "str") == 0;
    }
    ck_assert(seen_str);
    /* Every object of the heap is reachable after the build: the census
     * must find each exactly once. */
    ck_assert_int_eq(objects[0], heap_objects);
    ck_assert_int_eq(objects[1], heap_objects);
    ts_csv_free(&t);
    ts_csv_free(&r);
}
END_TEST

/* Answers received, by class: what the server must have counted. */
static long got4, got5;

static int
tally(int status)
{
    got4 += status >= 400 && status < 500;
    got5 += status >= 500 && status < 600;
    return status;
}

/* raw(), again while the answer is a 503 that was not wanted: with
 * --max-connections 1, a connection the worker has not seen closed yet
 * still counts.  Every answer is tallied. */
static int
raw_until(const char *bytes)
{
    int st;
    while (tally(st = raw(bytes)) == 503)
        ts_sleep_ms(20);
    return st;
}

/* A keep-alive connection whose first request (path) was answered. */
static int
open_asking(const char *path, char *body, size_t cap)
{
    for (;;) {
        int fd = ts_connect(S.port, 0);
        ck_assert_int_ge(fd, 0);
        int st = tally(ask(fd, path, body, cap));
        if (st != 503) {
            ck_assert_int_eq(st, 200);
            return fd;
        }
        ts_close(fd);
        ts_sleep_ms(20);
    }
}

/* Every answer a worker sent is counted, the HTTP layer's own included
 * (they never reach the handler), in /stats and, summed over every
 * process of the run (a recycled one too), in runs.csv. */
START_TEST(measure_every_answer_is_counted)
{
    const char *args[] = { "-w", "1", "--scale", "0.05", "--exit", "skip",
                           "--max-requests", "3", "--max-connections", "1",
                           NULL };
    char body[4096], url[6000];
    start(args);
    got4 = got5 = 0;
    /* the first process: 400, 505, 414 from the HTTP layer, 404 from the
     * handler; /stats; a third request recycles it */
    ck_assert_int_eq(raw_until("GARBAGE\r\n\r\n"), 400);
    ck_assert_int_eq(raw_until("GET / HTTP/2.0\r\nHost: t\r\n\r\n"), 505);
    memset(url, 'a', sizeof url);
    memcpy(url, "GET /", 5);
    snprintf(url + 5000, sizeof url - 5000, " HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(raw_until(url), 414);
    ck_assert_int_eq(raw_until("GET /no-such-route HTTP/1.1\r\nHost: t\r\n"
                               "\r\n"), 404);
    int fd = open_asking("/stats", body, sizeof body);
    long pid1 = json_long(body, "pid");
    ck_assert_int_eq(json_long(body, "responses_4xx"), got4);
    ck_assert_int_eq(json_long(body, "responses_5xx"), got5);
    ck_assert_int_ge(got4, 3);
    ck_assert_int_ge(got5, 1);
    ck_assert_int_eq(tally(ask(fd, "/healthz", body, sizeof body)), 200);
    ts_close(fd);                   /* 3 requests: recycled */
    long p1_4 = got4, p1_5 = got5;
    /* the second process: a bare CR (400), then 503 over one connection */
    ck_assert_int_eq(raw_until("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
    fd = open_asking("/healthz", body, sizeof body);
    ck_assert_int_ne(json_long(body, "pid"), pid1);
    int fd2 = ts_connect(S.port, 0);
    ck_assert_int_ge(fd2, 0);
    ck_assert_int_eq(tally(ts_read_response(fd2, NULL, 0)), 503);
    ts_close(fd2);
    ck_assert_int_eq(tally(ask(fd, "/stats", body, sizeof body)), 200);
    ck_assert_int_eq(json_long(body, "responses_4xx"), got4 - p1_4);
    ck_assert_int_eq(json_long(body, "responses_5xx"), got5 - p1_5);
    ts_close(fd);
    kill(S.pid, SIGTERM);
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("measure: answers counted: %ld 4xx, %ld 5xx\n", got4, got5);
    ts_csv_t r;
    ck_assert_int_eq(csv_load(&r, "runs.csv"), 1);
    ck_assert_int_eq(ts_csv_long(&r, 0, "respawns"), 1);
    ck_assert_int_eq(ts_csv_long(&r, 0, "requests"), 5);
    ck_assert_int_eq(ts_csv_long(&r, 0, "responses_4xx"), got4);
    ck_assert_int_eq(ts_csv_long(&r, 0, "responses_5xx"), got5);
    ts_csv_free(&r);
}
END_TEST

/* Run python3 with argv; its exit status, or -1 if there is no python3. */
static int
python(const char *const *argv)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* A workload path holding a comma and a quote stays one field of
 * runs.csv (RFC 4180), read back by a real CSV parser. */
START_TEST(measure_workload_path_is_quoted)
{
    char wl[256], want[600], path[256];
    snprintf(wl, sizeof wl, "%s/wl,\"x\".json", tmpdir);
    FILE *in = fopen("workloads/webapp.json", "r");
    ck_assert_msg(in != NULL, "workloads/webapp.json (run from the repo "
                  "root)");
    FILE *out = fopen(wl, "w");
    ck_assert_ptr_nonnull(out);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    const char *args[] = { "-w", "1", "--scale", "0.05", "--duration", "1",
                           "--exit", "skip", "--workload", wl, NULL };
    start(args);
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the exact field */
    snprintf(want, sizeof want, ",skip,0.05,\"%s/wl,\"\"x\"\".json\",on,",
             tmpdir);
    snprintf(path, sizeof path, "%s/runs.csv", outdir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_msg(strstr(line, want) != NULL, "%s", line);
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    /* a real parser: one row, as many fields as the header, the path */
    const char *script =
        "import csv, sys\n"
        "rows = list(csv.reader(open(sys.argv[1], newline='')))\n"
        "assert len(rows) == 2, rows\n"
        "assert len(rows[1]) == len(rows[0]), rows\n"
        "r = dict(zip(rows[0], rows[1]))\n"
        "assert r['workload'] == sys.argv[2], r['workload']\n"
        "assert r['gc'] == 'on' and r['exit'] == 'skip', r\n";
    const char *argv[] = { "python3", "-c", script, path, wl, NULL };
    int rc = python(argv);
    if (rc < 0)
        ts_skip("measure_workload_path_is_quoted (python3 part)",
                "no python3");
    else
        ck_assert_int_eq(rc, 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("measure");
    TCase *tc = tcase_create("measure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, measure_readme_tables_are_the_column_tables);
    tcase_add_test(tc, measure_columns_keep_their_names);
    tcase_add_test(tc, measure_rows_keep_their_number_formats);
    tcase_add_test(tc, measure_text_is_quoted_rfc4180);
    tcase_add_test(tc, measure_round_is_one_write);
    tcase_add_test(tc, measure_write_errors_are_reported);
    tcase_add_test(tc, measure_sampler_keeps_to_one_percent);
    tcase_add_test(tc, measure_sampler_rounds_and_deadlines);
    tcase_add_test(tc, measure_sigkill_master_leaves_whole_rows);
    tcase_add_test(tc, measure_copies_by_cause_add_up);
    tcase_add_test(tc, measure_skip_exit_copies_nothing);
    tcase_add_test(tc, measure_stopping_workers_not_sampled);
    tcase_add_test(tc, measure_type_census_counts_every_object);
    tcase_add_test(tc, measure_every_answer_is_counted);
    tcase_add_test(tc, measure_workload_path_is_quoted);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("heap");
    tcase_add_checked_fixture(th, mem_setup, mem_teardown);
    tcase_set_timeout(th, 120);
    tcase_add_test(th, measure_snapshot_takes_every_range);
    tcase_add_test(th, measure_snapshot_out_of_memory);
    suite_add_tcase(s, th);
    return ts_run_suite(s);
}
