/*
 * replay_main.c -- a main() for the fuzz targets without libFuzzer: feed
 * every file named on the command line (directories: every regular file
 * in them, not recursively) to LLVMFuzzerTestOneInput() once.  This is how
 * `make test` replays the seed corpora and the kept crashers with the
 * ordinary compiler (and under `make asan` with the sanitizers): a
 * regression input that crashes again fails the run.
 * Prints "fuzz_NAME: N inputs replayed" and exits 0; a missing directory
 * counts as empty (regressions/<target>/ may not exist yet).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replayed;

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, k;

    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *nb;

            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = nb;
        }
        k = fread(buf + len, 1, cap - len, f);
        if (k == 0)
            break;
        len += k;
    }
    fclose(f);
    /* An exact-size copy, so that ASan sees reads past the input. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    replayed++;
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;

    if (stat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;                   /* ., .., .gitkeep */
        if (n == cap) {
            char **nn;

            cap = cap ? cap * 2 : 64;
            if ((nn = realloc(names, cap * sizeof *names)) == NULL) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if ((names[n] = malloc(len)) == NULL) {
            rc = -1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_str);   /* a stable order */
    for (i = 0; i < n; i++) {
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/');
    int i;

    name = name ? name + 1 : argv[0];
    for (i = 1; i < argc; i++) {
        if (replay_path(argv[i]) < 0) {
            fprintf(stderr, "%s: cannot replay %s\n", name, argv[i]);
            return 1;
        }
    }
    printf("%s: %zu inputs replayed\n", name, replayed);
    return 0;
}
