#!/usr/bin/env python3
"""http_target.py - a scriptable HTTP server on 127.0.0.1 for testing the HTTP
connector against a real socket. Python 3 standard library only.

    http_target.py [--port N] [--port-file FILE] [--log FILE] [--max-seconds S]
                   [--rule PREFIX=SPEC ...]

It prints the port it listens on as the first line of stdout (and writes it to
--port-file when given), records every request to the JSON Lines file --log
(method, path, query, headers, body, parsed JSON body, client port, time, the
rule that answered), and answers according to rules. It exits by itself after
--max-seconds (default 600), on SIGTERM or SIGINT.

A rule applies to requests whose path starts with its prefix (the longest
prefix wins; an optional "method" narrows it). Members (all optional):
    status        status code to answer (default 200)
    body          JSON to answer (default {"ok": true}, or {"error": ...} for
                  a status >= 400)
    body_text     raw text to answer instead of JSON
    content_type  for body_text (default text/plain)
    retry_after   Retry-After header value, e.g. "7" or an HTTP-date
    headers       more response headers {name: value}
    fail_times    answer fail_status to the first N matching requests, then
                  answer normally ("fail N times then succeed")
    fail_status   status of those failures (default 503)
    delay_ms      wait this long before answering
    hang          never answer: hold the request until the client gives up
    echo          answer {"ok": true, "request": <the recorded request>}
On the command line a rule is PREFIX=SPEC, SPEC being JSON or k=v pairs:
    --rule /campaign/c-429=status=429,retry_after=7
    --rule '/slow/={"delay_ms": 200}'

Control endpoints (never recorded):
    POST /_control   {"rules": [{"prefix": "/x", ...}, ...], "replace": false,
                      "clear_requests": false}  -> {"ok": true, "rules": n}
    GET  /_requests  the recorded requests, as a JSON array
    POST /_reset     drops every rule and every recorded request
    GET  /_health    {"ok": true}
"""

import argparse
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    """Rules, recorded requests and the log file, shared by every handler."""

    def __init__(self, log_path):
        self.lock = threading.Lock()
        self.rules = []
        self.requests = []
        self.seq = 0
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None
        self.stopping = threading.Event()

    def add_rules(self, rules, replace=False):
        with self.lock:
            if replace:
                self.rules = []
            for r in rules:
                if not isinstance(r, dict) or not isinstance(r.get("prefix"), str):
                    raise ValueError("a rule is an object with a string 'prefix'")
                r = dict(r)
                r["_seen"] = 0
                # a new rule for the same prefix and method replaces the old one
                self.rules = [
                    o for o in self.rules
                    if (o["prefix"], o.get("method")) != (r["prefix"], r.get("method"))
                ]
                self.rules.append(r)
            return len(self.rules)

    def match(self, method, path):
        """The longest-prefix rule for this request, and how many requests it
        had seen before this one (for fail_times)."""
        with self.lock:
            best = None
            for r in self.rules:
                if not path.startswith(r["prefix"]):
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if best is None or len(r["prefix"]) > len(best["prefix"]):
                    best = r
            if best is None:
                return None, 0
            seen = best["_seen"]
            best["_seen"] += 1
            return best, seen

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests.append(entry)
            if self.log:
                self.log.write(json.dumps(entry, sort_keys=True) + "\n")
                self.log.flush()

    def reset(self):
        with self.lock:
            self.rules = []
            self.requests = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the connector expects
    server_version = "http_target/1"

    def log_message(self, fmt, *args):  # quiet: everything is in the log file
        pass

    @property
    def state(self):
        return self.server.state

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=None, text=None, content_type="application/json", headers=None):
        payload = (text if text is not None else json.dumps(body)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _hang(self):
        """Holds the request without answering until the client closes its end
        (it timed out) or the server stops, then drops the connection."""
        sock = self.connection
        while not self.state.stopping.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self.close_connection = True

    def _control(self, method, path, raw):
        if method == "GET" and path == "/_requests":
            with self.state.lock:
                return self._send(200, list(self.state.requests))
        if method == "GET" and path == "/_health":
            return self._send(200, {"ok": True})
        if method == "POST" and path == "/_reset":
            self.state.reset()
            return self._send(200, {"ok": True})
        if method == "POST" and path == "/_control":
            try:
                doc = json.loads(raw or b"{}")
                if doc.get("clear_requests"):
                    with self.state.lock:
                        self.state.requests = []
                n = self.state.add_rules(doc.get("rules", []), bool(doc.get("replace")))
            except (ValueError, AttributeError) as e:
                return self._send(400, {"error": str(e)})
            return self._send(200, {"ok": True, "rules": n})
        return self._send(404, {"error": "unknown control endpoint"})

    def _handle(self):
        split = urlsplit(self.path)
        method, path = self.command, split.path
        raw = self._read_body()
        if path.startswith("/_"):
            return self._control(method, path, raw)

        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        headers = {}
        for k, v in self.headers.items():
            headers[k] = headers[k] + ", " + v if k in headers else v
        rule, seen = self.state.match(method, path)
        entry = {
            "time": time.time(),
            "method": method,
            "path": path,  # as sent: percent-encoding kept
            "raw_path": self.path,
            "query": parse_qs(split.query, keep_blank_values=True),
            "headers": headers,
            "body": text,
            "json": parsed,
            "client_port": self.client_address[1],
            "rule": rule["prefix"] if rule else None,
        }
        self.state.record(entry)

        rule = rule or {}
        if rule.get("delay_ms"):
            self.state.stopping.wait(rule["delay_ms"] / 1000.0)
        if rule.get("hang"):
            return self._hang()
        status = int(rule.get("status", 200))
        if seen < int(rule.get("fail_times", 0)):
            status = int(rule.get("fail_status", 503))
        extra = dict(rule.get("headers") or {})
        if rule.get("retry_after") is not None:
            extra["Retry-After"] = rule["retry_after"]
        if rule.get("body_text") is not None:
            return self._send(status, text=rule["body_text"],
                              content_type=rule.get("content_type", "text/plain"), headers=extra)
        if rule.get("echo"):
            body = {"ok": status < 400, "request": entry}
        elif "body" in rule and status == int(rule.get("status", 200)):
            body = rule["body"]
        elif status >= 400:
            body = {"error": "http_target answered %d" % status, "path": path}
        else:
            body = {"ok": True}
        return self._send(status, body, headers=extra)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True      # a hung request never holds up the exit
    request_queue_size = 256   # a batch opens many connections at once


def parse_rule(arg):
    """PREFIX=SPEC, SPEC being JSON or k=v,k=v (values read as JSON when they can be)."""
    prefix, sep, spec = arg.partition("=")
    if not sep or not prefix.startswith("/"):
        raise argparse.ArgumentTypeError("a rule is /PREFIX=SPEC, got %r" % arg)
    spec = spec.strip()
    if spec.startswith("{"):
        rule = json.loads(spec)
    else:
        rule = {}
        for pair in filter(None, spec.split(",")):
            k, _, v = pair.partition("=")
            try:
                rule[k.strip()] = json.loads(v)
            except ValueError:
                rule[k.strip()] = v
    rule["prefix"] = prefix
    return rule


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    ap.add_argument("--port-file", help="also write the port to this file")
    ap.add_argument("--log", help="append every request to this JSON Lines file")
    ap.add_argument("--max-seconds", type=float, default=600, help="exit after this long")
    ap.add_argument("--rule", action="append", type=parse_rule, default=[],
                    metavar="PREFIX=SPEC", help="an answering rule (repeatable)")
    args = ap.parse_args()

    state = State(args.log)
    state.add_rules(args.rule)
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = state
    port = server.server_address[1]

    def stop(*_):
        state.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(args.max_seconds, stop)
    timer.daemon = True
    timer.start()

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        if state.log:
            state.log.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
