"""cowapp's views.  Each request reads part of the heap the way a real
request does: a page renders products through a template, the API runs
an ORM query and reads catalog entries, a user lookup walks a profile
and its history.  Reading an object writes its reference count, so these
reads are what copies the shared heap into a worker.

CountRequests (middleware) appends "pid requests monotonic_ns" to the
file named by COWLAB_COUNT_FILE every few requests, so the runner can
tell how many requests each worker had served at each sample (cowlab
attach cannot: it reads /proc only)."""
import json
import os
import random
import time

from django.http import HttpResponse, JsonResponse
from django.template.loader import get_template

from cowapp import heap
from cowapp.models import Item

_rng = random.Random()
_template = None
_COUNT_EVERY = 10


class CountRequests:
    """Per-process request counter, logged every _COUNT_EVERY requests."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.path = os.environ.get("COWLAB_COUNT_FILE")
        self.pid = None
        self.fd = -1
        self.n = 0

    def __call__(self, request):
        response = self.get_response(request)
        if self.path:
            if self.pid != os.getpid():         # first request after fork
                self.pid = os.getpid()
                self.n = 0
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND
                                  | os.O_CREAT, 0o644)
            self.n += 1
            if self.n == 1 or self.n % _COUNT_EVERY == 0:
                os.write(self.fd, b"%d %d %d\n" % (self.pid, self.n,
                                                   time.monotonic_ns()))
        return response


def _products(k):
    cat = heap.CATALOG
    return [cat[_rng.randrange(len(cat))] for _ in range(k)]


def page(request):
    global _template
    if _template is None:
        _template = get_template("page.html")
    user = heap.USERS[_rng.randrange(len(heap.USERS))]
    title = heap.TRANSLATIONS["msg.%d" % _rng.randrange(len(heap.TRANSLATIONS))]
    html = _template.render({"title": title, "products": _products(20),
                             "user": user})
    return HttpResponse(html)


def items(request):
    cat = _rng.randint(1, 50)
    rows = list(Item.objects.filter(category_id=cat)
                .values("sku", "name", "price", "stock")[:20])
    total = 0.0
    for p in _products(60):
        total += p["price"] * p["attrs"]["size"]
        for t in p["tags"]:
            total += len(t)
    rule = heap.RULES[_rng.randrange(len(heap.RULES))]
    stock = heap.STOCK[_rng.randrange(len(heap.STOCK))]
    return JsonResponse({"items": [{"sku": r["sku"], "name": r["name"],
                                    "price": str(r["price"]),
                                    "stock": r["stock"]} for r in rows],
                         "score": total,
                         "discounted": rule.apply(100.0, 3),
                         "on_hand": stock.on_hand})


def user(request):
    u = heap.USERS[_rng.randrange(len(heap.USERS))]
    seen = [heap.SKU_INDEX[s] for s in u["history"]]
    return JsonResponse({"id": u["id"], "name": u["name"],
                         "email": u["email"], "prefs": u["prefs"],
                         "history": [{"sku": p["sku"], "name": p["name"],
                                      "price": p["price"]} for p in seen]})


def static(request):
    return HttpResponse(b"cowapp static asset\n" * 16,
                        content_type="text/plain")


def healthz(request):
    # ?ms=N holds the worker N ms (at most 2 s): concurrent probes then
    # reach every worker, which is how the runner knows all are serving
    try:
        ms = min(max(int(request.GET.get("ms", "0")), 0), 2000)
    except ValueError:
        ms = 0
    if ms:
        time.sleep(ms / 1000.0)
    return HttpResponse(json.dumps({"pid": os.getpid()}),
                        content_type="application/json")
