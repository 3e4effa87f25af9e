"""gunicorn settings and hooks for cowapp under scripts/realserver.py
(`gunicorn -c scripts/apps/gunicorn_conf.py cowapp.wsgi:application`).
The policy comes from COWLAB_POLICY, the exit from COWLAB_EXIT (see
cowapp/wsgi.py):
  default     --preload: the master imports the app, workers share it
  no-preload  each worker imports the app after its fork (no sharing)
  gc-disable  --preload, gc.disable() before the import (cowapp/wsgi.py)
  gc-freeze   --preload, gc.freeze() in pre_fork, just before each fork
  exit skip   os._exit(0) in worker_exit, which gunicorn calls in the
              worker as it leaves: no interpreter teardown
when_ready (the master, app loaded, before any fork) writes the master's
pid to COWLAB_READY_FILE and waits for COWLAB_GO_FILE: cowlab attach
takes its snapshot in between, so every worker is compared with the
master as it was before its fork."""
import gc
import os
import time

_policy = os.environ.get("COWLAB_POLICY", "default")
_exit = os.environ.get("COWLAB_EXIT", "finalize")

preload_app = _policy != "no-preload"
worker_class = "sync"
accesslog = None
graceful_timeout = 30
timeout = 120


def when_ready(server):
    ready = os.environ.get("COWLAB_READY_FILE")
    go = os.environ.get("COWLAB_GO_FILE")
    if not (ready and go):
        return
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)


def pre_fork(server, worker):
    if _policy == "gc-freeze":
        gc.freeze()


def worker_exit(server, worker):
    # gunicorn also calls this in the master for a worker it found gone:
    # only the worker itself may leave this way.
    if _exit == "skip" and os.getpid() == worker.pid:
        os._exit(0)
