/*
 * attach_cmd.h -- `cowlab attach`: measure a prefork server cowlab did not
 * start (gunicorn, uWSGI, any master/worker process tree), read-only.
 * The /proc side is measure/attach.h; this is the command: options, the
 * sampling loop, the output files.
 */
#ifndef COWLAB_ATTACH_CMD_H
#define COWLAB_ATTACH_CMD_H

/* argv[0] is "attach".  Returns the exit status: 0 (the run ended: its
 * duration, a signal, or the target exited), 1 (the target cannot be
 * read, or the output cannot be written), 2 (a bad command line). */
int srv_attach_main(int argc, char **argv);

#endif
