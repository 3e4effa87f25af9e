/*
 * fileio.c -- whole-file reads for the loaders (API: fileio.h).
 * The size from fstat() is only a first guess for the buffer: files in
 * /proc report 0, and a file can grow while it is read; the limit is
 * checked on the bytes actually read.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fio_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
    struct stat st;
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0;
    ssize_t r;
    int fd, rc;

    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto error;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto error;
    }
    if (st.st_size > (off_t)max) {
        rc = -EFBIG;
        goto error;
    }
    /* Invariant: buf[0..len) holds what was read, len <= max. */
    for (;;) {
        if (len + 1 >= cap) {
            /* room for max bytes, one more to see that there are more,
             * and the NUL */
            size_t limit = max + 2;

            cap = cap ? cap * 2 : (size_t)st.st_size + 4096;
            if (cap > limit)
                cap = limit;
            if (len + 1 >= cap) {
                rc = -EFBIG;
                goto error;
            }
            if ((nbuf = realloc(buf, cap)) == NULL) {
                rc = -ENOMEM;
                goto error;
            }
            buf = nbuf;
        }
        r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto error;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            rc = -EFBIG;
            goto error;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;

error:
    free(buf);
    close(fd);
    return rc;
}

int
fio_mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}
