/*
 * fuzz_config.c -- libFuzzer target for server/config.c: the JSON config
 * file (cfg_load_file) and the command line (cfg_parse_args).
 *
 * Input: a config file, as is; or, if the first byte is NUL, a command
 * line: the rest split at NUL bytes into arguments after "cowlab".  The
 * file goes to a memfd read back through /proc/self/fd/N, so the real
 * read_file() runs.  Command lines run in an empty temporary directory
 * and may not contain '/', so "-c NAME" can only name nothing (or "." and
 * ".."); --help and --version print to /dev/null.
 *
 * Oracles (abort() on violation):
 *   - an error leaves a message of one printable line (no control
 *     characters, though the file may hold any) and *c unchanged (all or
 *     nothing);
 *   - a loaded configuration is valid: cfg_to_json() of it loads back with
 *     cfg_load_file() and gives the same JSON (config.h promises both);
 *   - cfg_policy_label() stays inside buffers of every small size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_ARGS 48

static int fz_memfd = -1, fz_memfd2 = -1, fz_devnull = -1;
static int fz_cwd = -1, fz_emptydir = -1;  /* cwd, and an empty dir */
static char fz_path[64], fz_path2[64];

static _Noreturn void
fz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

static void
fz_init(void)
{
    static int done;
    char dir[] = "/tmp/cowlab-fuzz-config-XXXXXX";

    if (done)
        return;
    done = 1;
    fz_memfd = memfd_create("cowlab-fuzz-config", MFD_CLOEXEC);
    fz_memfd2 = memfd_create("cowlab-fuzz-config-2", MFD_CLOEXEC);
    fz_devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fz_memfd < 0 || fz_memfd2 < 0 || fz_devnull < 0)
        fz_fail("init", strerror(errno));
    snprintf(fz_path, sizeof fz_path, "/proc/self/fd/%d", fz_memfd);
    snprintf(fz_path2, sizeof fz_path2, "/proc/self/fd/%d", fz_memfd2);
    /* Command lines run where "-c NAME" finds nothing: a removed
     * directory.  (Only around the call: libFuzzer reads its corpus by
     * relative paths.) */
    fz_cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fz_cwd < 0 || mkdtemp(dir) == NULL
        || (fz_emptydir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fz_fail("init: temporary directory", strerror(errno));
    rmdir(dir);
}

static void
fz_set_file(int fd, const void *p, size_t n)
{
    if (ftruncate(fd, 0) < 0 || (n > 0 && pwrite(fd, p, n, 0) != (ssize_t)n))
        fz_fail("memfd write", strerror(errno));
}

/* The configuration as compact sorted JSON, without "config" (the file
 * it came from) and "check_config" (a command-line action: a file's
 * value is ignored, config.h), for comparisons.  Malloc'd. */
static char *
fz_dump(const cfg_t *c)
{
    json_t *j = cfg_to_json(c);
    char *s;

    if (j == NULL)
        fz_fail("cfg_to_json returned NULL", NULL);
    json_object_del(j, "config");
    json_object_del(j, "check_config");
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (s == NULL)
        fz_fail("json_dumps", NULL);
    return s;
}

/* A failure has a message of one printable line, unless the input is a
 * command line with a control character (arguments are echoed). */
static void
fz_check_message(int rc, const char *err, int newline_ok)
{
    if (rc >= 0)
        return;
    if (err[0] == '\0')
        fz_fail("error without a message", NULL);
    if (!newline_ok)
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                fz_fail("control character in the error message", err);
}

/* A loaded configuration must round-trip through its own JSON. */
static void
fz_check_roundtrip(const cfg_t *c)
{
    json_t *j = cfg_to_json(c);
    char *text, *a, *b, err[1024], label[80];
    cfg_t d;
    size_t k;
    int rc;

    if (j == NULL)
        fz_fail("cfg_to_json returned NULL", NULL);
    text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (text == NULL)
        fz_fail("json_dumps", NULL);
    fz_set_file(fz_memfd2, text, strlen(text));
    free(text);
    cfg_defaults(&d);
    err[0] = '\0';
    rc = cfg_load_file(&d, fz_path2, err, sizeof err);
    if (rc < 0)
        fz_fail("cfg_to_json() output does not load back", err);
    a = fz_dump(c);
    b = fz_dump(&d);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "before: %s\nafter:  %s\n", a, b);
        fz_fail("configuration changed through cfg_to_json()", NULL);
    }
    free(a);
    free(b);
    cfg_free(&d);
    for (k = 0; k <= sizeof label; k++) {
        const char *s;

        memset(label, 'Z', sizeof label);
        s = cfg_policy_label(c, label, k);
        if (k > 0 && s != label)
            fz_fail("cfg_policy_label returned another buffer", NULL);
        if (k > 0 && memchr(label, '\0', k) == NULL)
            fz_fail("cfg_policy_label: no NUL inside the buffer", NULL);
        if (k < sizeof label && label[k] != 'Z')
            fz_fail("cfg_policy_label wrote past the buffer", NULL);
    }
}

static void
fz_file(const uint8_t *data, size_t size)
{
    char err[1024], *before, *after;
    cfg_t c;
    int rc;

    fz_set_file(fz_memfd, data, size);
    cfg_defaults(&c);
    before = fz_dump(&c);
    err[0] = '\0';
    rc = cfg_load_file(&c, fz_path, err, sizeof err);
    fz_check_message(rc, err, 0);
    if (rc < 0) {
        after = fz_dump(&c);
        if (strcmp(before, after) != 0 || c.config_path != NULL)
            fz_fail("a failed load changed the configuration", err);
        free(after);
    } else {
        if (c.config_path == NULL || strcmp(c.config_path, fz_path) != 0)
            fz_fail("config_path is not the file loaded", NULL);
        fz_check_roundtrip(&c);
    }
    free(before);
    cfg_free(&c);
}

static void
fz_argv(const uint8_t *data, size_t size)
{
    char *buf, *argv[FZ_MAX_ARGS + 2], err[1024];
    int argc = 0, exit_now = -1, rc, saved;
    size_t i, start = 0;
    cfg_t c;

    if (memchr(data, '/', size) != NULL)
        return;                 /* no paths: see the header comment */
    buf = malloc(size + 1);
    if (buf == NULL)
        return;
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[argc++] = (char *)"cowlab";
    for (i = 0; i <= size && argc <= FZ_MAX_ARGS; i++) {
        if (i == size || buf[i] == '\0') {
            buf[i] = '\0';
            argv[argc++] = buf + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    cfg_defaults(&c);
    err[0] = '\0';
    fflush(stdout);
    saved = dup(1);
    dup2(fz_devnull, 1);
    if (fchdir(fz_emptydir) < 0)
        fz_fail("fchdir", strerror(errno));
    rc = cfg_parse_args(&c, argc, argv, &exit_now, err, sizeof err);
    if (fchdir(fz_cwd) < 0)
        fz_fail("fchdir", strerror(errno));
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    for (i = 0; i < size; i++)
        if (data[i] != '\0' && (data[i] < 0x20 || data[i] == 0x7f))
            break;
    fz_check_message(rc, err, i < size);    /* arguments are echoed */
    if (rc == 0 && exit_now != 0 && exit_now != 1)
        fz_fail("exit_now not set", NULL);
    if (rc == 0 && !exit_now)
        fz_check_roundtrip(&c);
    cfg_free(&c);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    fz_init();
    if (size > 0 && data[0] == '\0')
        fz_argv(data + 1, size - 1);
    else
        fz_file(data, size);
    return 0;
}
