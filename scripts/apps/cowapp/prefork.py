"""The master's pause before its first fork, for cowlab attach: write the
master's pid to COWLAB_READY_FILE, wait (at most 120 s) for
COWLAB_GO_FILE.  cowlab attach takes its snapshot in between, so every
worker is compared with the master as it was before its fork.

uWSGI with lazy-apps imports this module in its master (--shared-import,
before any fork, app not loaded); without lazy-apps, cowapp/wsgi.py calls
pause() at the end of the app's import.  gunicorn does the same in its
when_ready hook (gunicorn_conf.py)."""
import os
import time


def pause():
    ready = os.environ.get("COWLAB_READY_FILE")
    go = os.environ.get("COWLAB_GO_FILE")
    if not (ready and go) or os.path.exists(ready):
        return
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)


if os.environ.get("COWLAB_POLICY") == "lazy-apps":
    pause()
