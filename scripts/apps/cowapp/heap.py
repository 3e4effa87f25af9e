"""The data a web app holds after import, built once at import time:
a product catalog (dicts with strings, floats, tag lists and attribute
dicts), an index by SKU, user profiles with their history, translation
strings, and price rules as class instances (with and without
__slots__).  Its size follows COWLAB_APP_SCALE (1 = about 120 MiB of
the master's private memory with Django; the runner's --quick uses
0.05).  Deterministic: the same scale builds the same heap."""
import os
import random

SCALE = float(os.environ.get("COWLAB_APP_SCALE", "1"))
_rng = random.Random(42)

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet "
         "kilo lima mike november oscar papa quebec romeo sierra tango "
         "uniform victor whiskey xray yankee zulu amber basalt cedar dune "
         "ember fjord glacier harbor island jasper kelp lagoon meadow").split()
TAGS = ["tag-%02d" % i for i in range(60)]
COLORS = ("red", "green", "blue", "black", "white", "grey", "teal", "gold")


class PriceRule:
    """A discount rule, as an app's pricing module defines them."""

    def __init__(self, sku, pct, min_qty):
        self.sku = sku
        self.pct = pct
        self.min_qty = min_qty

    def apply(self, price, qty):
        return price * (1 - self.pct / 100.0) if qty >= self.min_qty else price


class Stock:
    """Stock level of a product (slotted, as hot small objects often are)."""
    __slots__ = ("sku", "on_hand", "reserved")

    def __init__(self, sku, on_hand, reserved):
        self.sku = sku
        self.on_hand = on_hand
        self.reserved = reserved


def _n(base, least):
    return max(least, int(base * SCALE))


N_PRODUCTS = _n(110000, 500)
N_USERS = _n(25000, 100)
N_STRINGS = _n(40000, 200)

CATALOG = []
SKU_INDEX = {}
for _i in range(N_PRODUCTS):
    _sku = "SKU-%08d" % _i
    _p = {
        "id": _i,
        "sku": _sku,
        "name": "%s %s %d" % (_rng.choice(WORDS), _rng.choice(WORDS), _i),
        "price": round(_rng.uniform(1, 500), 2),
        "tags": [_rng.choice(TAGS) for _ in range(3)],
        "attrs": {"color": _rng.choice(COLORS),
                  "size": _rng.randint(1, 50),
                  "weight": _rng.uniform(0.1, 20.0),
                  "origin": _rng.choice(WORDS).upper()},
    }
    CATALOG.append(_p)
    SKU_INDEX[_sku] = _p

USERS = {}
for _i in range(N_USERS):
    USERS[_i] = {
        "id": _i,
        "name": "user %s %d" % (_rng.choice(WORDS), _i),
        "email": "user%d@example.org" % _i,
        "visits": _rng.randint(0, 1000),
        "prefs": {"lang": _rng.choice(("en", "de", "fr")),
                  "newsletter": _rng.random() < 0.3},
        "history": [CATALOG[_rng.randrange(N_PRODUCTS)]["sku"]
                    for _ in range(5)],
    }

TRANSLATIONS = {"msg.%d" % _i: "%s %s %s (%d)" % (
    _rng.choice(WORDS), _rng.choice(WORDS), _rng.choice(WORDS), _i)
    for _i in range(N_STRINGS)}

RULES = [PriceRule(CATALOG[_i]["sku"], _rng.randint(1, 30), _rng.randint(1, 5))
         for _i in range(0, N_PRODUCTS, 4)]
STOCK = [Stock(p["sku"], _rng.randint(0, 500), 0) for p in CATALOG]
