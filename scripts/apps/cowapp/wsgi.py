"""cowapp's WSGI entry point: the policy a Python user can set, Django, the
in-memory database and the heap, then `application`.  Where the server
loads the app in its master (gunicorn --preload, uWSGI without
lazy-apps), all of it is built before the fork and shared copy-on-write.

Set by scripts/realserver.py (each has a default, so a server can be run
by hand):
  COWLAB_SERVER     gunicorn | uwsgi
  COWLAB_POLICY     default | no-preload | lazy-apps | gc-disable |
                    gc-freeze (gunicorn freezes in its pre_fork hook,
                    gunicorn_conf.py; uWSGI here, the end of the import in
                    its master being the last Python before its fork)
  COWLAB_EXIT       finalize (the worker exits as the server makes it:
                    Py_Finalize) | skip (os._exit(0) at worker exit)
  COWLAB_APP_SCALE  heap size (heap.py)
  COWLAB_READY_FILE, COWLAB_GO_FILE  the master's pause before its
                    fork (cowapp/prefork.py)
"""
import atexit
import gc
import os
import sys

POLICY = os.environ.get("COWLAB_POLICY", "default")
SERVER = os.environ.get("COWLAB_SERVER", "")
EXIT = os.environ.get("COWLAB_EXIT", "finalize")

if POLICY == "gc-disable":
    # Instagram's first step: no collections from the start (before the
    # app's import), in the master and so in every worker.
    gc.disable()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cowapp.settings")

import django                                   # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application   # noqa: E402
from django.db import connection                # noqa: E402
from django.template.loader import get_template     # noqa: E402

from cowapp import heap, prefork                # noqa: E402
from cowapp.models import Category, Item, Review    # noqa: E402


def _build_db():
    """Tables and rows in this process's in-memory database."""
    with connection.schema_editor() as se:
        for m in (Category, Item, Review):
            se.create_model(m)
    cats = [Category(name="category %d" % i, slug="cat-%d" % i)
            for i in range(1, 51)]
    Category.objects.bulk_create(cats)
    n = max(200, int(3000 * heap.SCALE))
    Item.objects.bulk_create(
        [Item(category_id=1 + i % 50, sku=heap.CATALOG[i % len(heap.CATALOG)]
              ["sku"], name=heap.CATALOG[i % len(heap.CATALOG)]["name"],
              price="%.2f" % heap.CATALOG[i % len(heap.CATALOG)]["price"],
              stock=i % 97) for i in range(n)], batch_size=500)
    Review.objects.bulk_create(
        [Review(item_id=1 + i % n, stars=1 + i % 5, text="review %d" % i)
         for i in range(n // 2)], batch_size=500)


_build_db()
get_template("page.html")                       # compiled, cached
application = get_wsgi_application()


def _in_uwsgi_worker():
    try:
        import uwsgi
    except ImportError:
        return False
    return uwsgi.worker_id() > 0


if SERVER == "uwsgi" and EXIT == "skip":
    # uWSGI runs Python's atexit functions in a worker that exits, then
    # Py_Finalize: this one, registered first, runs last and skips the
    # teardown, as os._exit does.
    def _skip_teardown():
        if _in_uwsgi_worker():
            os._exit(0)
    atexit.register(_skip_teardown)

if SERVER == "uwsgi" and not _in_uwsgi_worker():
    # uWSGI's master, the app loaded: the fork comes next
    if POLICY == "gc-freeze":
        gc.freeze()
    prefork.pause()
