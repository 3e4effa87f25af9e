"""What the census and make validate-app import: importing this module
sets Django up as a preloading server's master would (settings, the app
registry, the in-memory database migrated and filled, URL resolver and
templates warmed by one request each), and its functions serve one request
each through Django's test client (no network, no server).

Two request mixes, so that a model calibrated on one can be compared on
the other (README, "Model your own app"):
  request_a   the JSON list, the template page and a book's detail page
  request_b   a search form, the admin login page and a detail page
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "censusapp.settings")

import django                                   # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client                  # noqa: E402

from censusapp.models import Author, Book, Tag  # noqa: E402

AUTHORS, BOOKS, TAGS = 100, 600, 40


def _fill():
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    # SQLite's bulk insert returns no ids in Django 3.2: read them back.
    Tag.objects.bulk_create([Tag(label="tag-%d" % i) for i in range(TAGS)])
    Author.objects.bulk_create(
        [Author(name="Author %d" % i, email="a%d@example.org" % i)
         for i in range(AUTHORS)])
    tags = list(Tag.objects.order_by("id"))
    authors = list(Author.objects.order_by("id"))
    Book.objects.bulk_create(
        [Book(title="Book number %d" % i, author=authors[i % AUTHORS],
              pages=50 + (i * 37) % 900) for i in range(BOOKS)])
    through = Book.tags.through
    through.objects.bulk_create(
        [through(book_id=b, tag_id=tags[(b * 7 + k) % TAGS].id)
         for b in Book.objects.values_list("id", flat=True)
         for k in range(3)])

_fill()
_client = Client()
_serial = [0]

MIX_A = ("/books/", "/page/", "/book/%d/")
MIX_B = ("/search/?q=number+1&min_pages=%d", "/admin/login/", "/book/%d/",
         "/page/")


def _get(mix):
    n = _serial[0]
    _serial[0] = n + 1
    url = mix[n % len(mix)]
    if "%d" in url:
        url = url % (1 + (n * 13) % BOOKS)
    r = _client.get(url)
    if r.status_code != 200:
        raise RuntimeError("GET %s: status %d" % (url, r.status_code))
    return r


def request_a():
    """One request of mix A."""
    return _get(MIX_A)


def request_b():
    """One request of mix B."""
    return _get(MIX_B)


# A preloading master has served nothing, but its URL resolver and
# templates are usually warm (a health check, or Django's own checks):
# one request of each kind warms them here.
for _url in set(MIX_A + MIX_B):
    _client.get(_url % 1 if "%d" in _url else _url)
_serial[0] = 0
