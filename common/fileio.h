/*
 * fileio.h -- read a whole file into memory: the config loader and the
 * workload loader both take their JSON text this way, so both refuse the
 * same things (a directory, a file over their size limit) with the same
 * errno; and make an output folder with its parents (the server and
 * `cowlab attach`).  Functions return 0 or a negative errno (libuv style).
 */
#ifndef COWLAB_FILEIO_H
#define COWLAB_FILEIO_H

#include <stddef.h>

/*
 * Read the file at path (at most max bytes) into a new buffer with a NUL
 * after the last byte; *out (free() it) and *outlen on success only.
 * -EISDIR for a directory, -EFBIG past max bytes (also for a file that
 * grows while it is read, or one whose size stat() does not know, as in
 * /proc), -ENOMEM, or the -errno of open/read.
 */
int fio_read_file(const char *path, size_t max, char **out, size_t *outlen);

/* mkdir -p: path and every missing parent (mode 0777 less the umask); an
 * existing folder is fine.  -ENAMETOOLONG past 4095 bytes, or the -errno
 * of mkdir. */
int fio_mkdir_p(const char *path);

#endif /* COWLAB_FILEIO_H */
