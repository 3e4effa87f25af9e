"""censustiny -- a known heap for scripts/test_census.sh: imports a small
module tree (json, email) and adds, from the environment,
CENSUSTINY_LISTS lists of one float each and CENSUSTINY_RINGS rings of 3
dicts (each refers to the next), so that two censuses differ by exact
counts.  request() serves one "request": some temporaries and one cycle
of garbage."""
import email.message
import json
import os

LISTS = [[float(i) + 0.5] for i in range(int(os.environ.get(
    "CENSUSTINY_LISTS", "0")))]


def _ring():
    a, b, c = {"n": 1}, {"n": 2}, {"n": 3}
    a["next"], b["next"], c["next"] = b, c, a
    return a


RINGS = [_ring() for _ in range(int(os.environ.get("CENSUSTINY_RINGS",
                                                    "0")))]


def request():
    msg = email.message.Message()
    msg["Subject"] = "census"
    body = json.dumps({"items": [{"k": i} for i in range(50)]})
    x = []
    x.append(x)                         # one cycle of garbage
    return len(body) + len(msg.as_string())
