#!/usr/bin/env python3
"""make_seeds.py -- (re)write the seed corpora under tests/fuzz/corpus/.

Run from anywhere: python3 tests/fuzz/make_seeds.py.  The seeds are
checked in; this script documents where they come from and regenerates
them after a format change.  Files are named seed-<name> so that they
never clash with what libFuzzer adds (hash names, in build/fuzz/corpus).

  http/      option byte + chunking seed + request bytes (fuzz_http.c)
  config/    the config fixtures, and NUL-prefixed command lines
  workload/  the workload fixtures and the embedded webapp.json
  procstat/  the /proc fixtures and this machine's own files
  jsonpos/   "POINTER\\nJSON" pairs
"""
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def http_seeds():
    G = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    reqs = {
        "get": G,
        "get-routes": "GET /api/items HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /api/user HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /static HTTP/1.1\r\nHost: t\r\n\r\n",
        "query": "GET /?reads=10&hot=0.5&walk_depth=2&response_items=50&retain=3 "
                 "HTTP/1.1\r\nHost: t\r\n\r\n",
        "query-bad": "GET /?reads=ten&bogus=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        "healthz-close": "GET /healthz HTTP/1.1\r\nHost: t\r\n"
                         "Connection: close\r\n\r\n",
        "close-route": "GET /close HTTP/1.1\r\nHost: t\r\n\r\n" + G,
        "status": "POST /status?99 HTTP/1.1\r\nHost: t\r\n"
                  "Content-Length: 10\r\n\r\ntext/plain",
        "head": "HEAD /api/items HTTP/1.1\r\nHost: t\r\n\r\n" + G,
        "http10": "GET /healthz HTTP/1.0\r\n\r\n",
        "http10-ka": "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                     "GET / HTTP/1.0\r\n\r\n",
        "post-cl": "POST /api/items HTTP/1.1\r\nHost: t\r\n"
                   "Content-Length: 5\r\n\r\nhello",
        "post-chunked": "POST / HTTP/1.1\r\nHost: t\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
                        "Trailer: x\r\n\r\n" + G,
        "expect": "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  "Content-Length: 3\r\n\r\nabc",
        "pipeline": G * 8,
        "pipeline-big": "GET /api/items HTTP/1.1\r\nHost: t\r\n\r\n" * 12,
        "absolute": "GET http://example.com:80/healthz?x=1#frag HTTP/1.1\r\n"
                    "Host: example.com\r\n\r\n",
        "options-star": "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
        "upgrade": "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                   "Upgrade: websocket\r\nContent-Length: 4\r\n\r\nGET " + G,
        "leading-crlf": "\r\n\r\n" + G,
        # bad ones: each should get a 4xx and a close
        "bare-cr": "GET / HTTP/1.1\rHost: t\r\n\r\n",
        "bare-lf": "GET / HTTP/1.1\nHost: t\n\n",
        "bare-cr-end": "GET / HTTP/1.1\r\nHost: t\r\n\r\r\n",
        "dup-cl": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                  "Content-Length: 1\r\n\r\nx",
        "cl-te": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te-te": "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
                 "\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "te-gzip": "POST / HTTP/1.1\r\nHost: t\r\n"
                   "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "te-http10": "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\n",
        "cl-space": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n"
                    "\r\nabc",
        "cl-plus": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n"
                   "\r\nabc",
        "obs-fold": "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
        "version-bad": "GET / HTTX/1.1\r\n\r\n",
        "version-2": "GET / HTTP/2.0\r\n\r\n",
        "http09": "GET /\r\n\r\n",
        "method-bad": "G@T / HTTP/1.1\r\n\r\n",
        "connect": "CONNECT t:80 HTTP/1.1\r\nHost: t\r\n\r\n",
        "two-spaces": "GET  / HTTP/1.1\r\n\r\n",
        "ctl-target": "GET /a\x01b HTTP/1.1\r\n\r\n",
        "nul": "GET / HTTP/1.1\r\nHost: t\x00\r\n\r\n",
        "chunk-bad-crlf": "POST / HTTP/1.1\r\nHost: t\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n"
                          "\r\n",
        "chunk-huge": "POST / HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "ffffffffffffffffff\r\n",
        "long-url": "GET /" + "a" * 300 + " HTTP/1.1\r\n\r\n",
        "long-header": "GET / HTTP/1.1\r\nX: " + "b" * 1000 + "\r\n\r\n",
        "big-body": "POST / HTTP/1.1\r\nContent-Length: 400\r\n\r\n"
                    + "c" * 400,
        "dup-host": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "half": "GET /half",
        "half-body": "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
                     "\r\n0123456789",
    }
    # option byte: see fuzz_http.c (bit 0 small limits, 1 small buffers,
    # 2 reader, 3 half close, 4-5 chunking, 6 stop, 7 reject)
    variants = [(0x00, "a"), (0x04, "r"), (0x1d, "s"), (0x2e, "m"),
                (0x33, "l"), (0x46, "x"), (0x8c, "j")]
    for name, req in reqs.items():
        for opt, tag in variants:
            out("http", "%s-%s" % (name, tag),
                bytes([opt, len(name) & 0xff]) + req.encode("latin-1"))


def config_seeds():
    for p in glob.glob(os.path.join(ROOT, "tests/fixtures/config/*.json")):
        with open(p, "rb") as f:
            out("config", os.path.basename(p), f.read())
    argvs = {
        "workers": ["-w", "8", "--gc", "off", "--freeze"],
        "all": ["--workers=3", "--port", "0", "--gc-threshold", "700,10,10",
                "--immortal", "--no-freeze", "--exit", "skip",
                "--max-requests", "100", "--max-requests-jitter", "10",
                "--timeout", "2.5", "--graceful-timeout", "1",
                "--sample-ms", "50", "--duration", "3", "--requests", "9",
                "--out", "res", "--run-id", "r1", "--policy-name", "p+q",
                "--scale", "0.5", "--lazy", "--type-census",
                "--pagemap-gc-fraction", "0.5", "--limit-header-bytes", "512",
                "--limit-url-bytes", "64", "--limit-body-bytes", "0",
                "--header-timeout-ms", "100", "--keepalive-timeout-ms", "0",
                "--max-connections", "2", "-q", "--host", "::1"],
        "bad-int": ["--workers", "zero"],
        "bad-thresh": ["--gc-threshold", "1,2"],
        "unknown": ["--wokers", "2"],
        "missing": ["--workers"],
        "positional": ["extra"],
        "config-missing": ["-c", "nothere.json"],
        "config-dir": ["--config=."],
        "help": ["--help"],
        "version": ["-V"],
        "flag-value": ["--freeze=yes"],
        "empty-out": ["--out", "", "--run-id", ".hidden"],
    }
    for name, a in argvs.items():
        out("config", "argv-" + name, b"\x00" + b"\x00".join(
            x.encode() for x in a))


def workload_seeds():
    for p in glob.glob(os.path.join(ROOT, "tests/fixtures/workload/*.json")):
        with open(p, "rb") as f:
            out("workload", os.path.basename(p), f.read())
    with open(os.path.join(ROOT, "workloads/webapp.json"), "rb") as f:
        out("workload", "webapp.json", f.read())
    out("workload", "tiny.json",
        '{"name": "tiny", "heap": {"interned_strings": 100, "modules": 2,'
        ' "config_dicts": 2, "url_patterns": 3, "templates": 2,'
        ' "models": 2, "instances": 20}, "routes": [{"path": "/",'
        ' "reads": 5, "temporaries": 3, "cyclic_garbage": 1, "retain": 2,'
        ' "retain_max": 4, "response_items": 3, "walk_depth": 2}]}')


def procstat_seeds():
    for p in glob.glob(os.path.join(ROOT, "tests/fixtures/procstat/*")):
        with open(p, "rb") as f:
            out("procstat", os.path.basename(p), f.read())
    for name in ("smaps_rollup", "stat"):
        try:
            with open("/proc/self/" + name, "rb") as f:
                out("procstat", "self-" + name, f.read())
        except OSError:
            pass


def jsonpos_seeds():
    pairs = {
        "root": ("", '{"a": 1}'),
        "member": ("/workers", '{\n  "workers": "many"\n}\n'),
        "nested": ("/routes/1/reads",
                   '{"routes": [{"path": "/"}, {"path": "/x", "reads": -1}]}'),
        "escape": ("/a~1b/c~0d", '{"a/b": {"c~d": [1, 2, {"e": null}]}}'),
        "unicode": ("/caf\u00e9",
                    '{"caf\\u00e9": 1, "\u00e9t\u00e9": "\\ud83d\\ude00"}'),
        "dup": ("/k", '{"k": 1, "k": [true, false]}'),
        "index0": ("/0", '[[], {}, "x"]'),
        "leading-zero": ("/01", '[1, 2]'),
        "missing": ("/nope", '{"a": {"b": 2}}'),
        "bad-escape": ("/a~2", '{"a~2": 1}'),
        "truncated": ("/a/b", '{"a": {"b": [1, 2'),
        "strings": ("/s", '{"x": "}\\"]", "s": "\\\\"}'),
        "gc-threshold": ("/gc_threshold/2",
                         '{"gc_threshold": [700, 10, "x"]}'),
    }
    for name, (ptr, text) in pairs.items():
        out("jsonpos", name, (ptr + "\n" + text).encode())


if __name__ == "__main__":
    http_seeds()
    config_seeds()
    workload_seeds()
    procstat_seeds()
    jsonpos_seeds()
    for t in ("http", "config", "workload", "procstat", "jsonpos"):
        n = len(os.listdir(os.path.join(HERE, "corpus", t)))
        print("%-9s %d seeds" % (t, n))
