#!/usr/bin/env python3
"""Detection quality of `aisec guard` measured end to end through the real proxy (bench/guard/PROXY.md).

Each row of a labelled JSONL file (`{"text", "label": 0|1, "source", "kind"}`, as `train_classifier.py` writes them)
is sent as the user message of one OpenAI chat request to a running `aisec guard` with the given policy (the example
policy by default), in front of a stub upstream that answers every request with "OK."; a 403 from the guard is a
block. This is how issue 17's own evaluation reads the guard (the HTTP path, the policy file, the default second
stage), not the library calls of `examples/quality.rs`. Standard library only; everything on loopback.

Usage: bench/guard/proxy_quality.py AISEC_BIN POLICY NAME=FILE.jsonl...
Environment: AISEC_GUARD_PROXY_ROLE=system sends each row as the system message before an ordinary user turn;
AISEC_GUARD_PROXY_LOG=FILE keeps the guard's audit log.
Prints a markdown table per file (guard decision per source, then all rows) and the HTTP round-trip time.
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        body = json.dumps({"id": "stub", "object": "chat.completion", "created": 0, "model": "stub",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK."},
                                        "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# AISEC_GUARD_PROXY_ROLE=system: each row is the application's system message, followed by an ordinary user turn (how
# an app's own instructions reach the guard; b3's system prompts, QUALITY.md); default: the user message
ROLE = os.environ.get("AISEC_GUARD_PROXY_ROLE", "user")


def post(url, text):
    if ROLE == "system":
        messages = [{"role": "system", "content": text}, {"role": "user", "content": "Hi, can you help me with my order?"}]
    else:
        messages = [{"role": "user", "content": text}]
    data = json.dumps({"model": "stub", "messages": messages}).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def row(name, c):
    tp, fp, fn, tn = c
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    pos, neg = tp + fn, fp + tn
    na = lambda x, n: f"{x:.3f}" if n else "-"
    return f"| {name} | {pos + neg} | {pos} | {na(p, tp + fp)} | {na(r, pos)} | {na(f1, pos)} | {na(fp / max(neg, 1), neg)} | {fp} | {fn} |"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    aisec, policy, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    gport = free_port()
    log = open(os.environ.get("AISEC_GUARD_PROXY_LOG", os.devnull), "w")
    guard = subprocess.Popen([aisec, "guard", "--policy", policy, "--upstream", f"http://127.0.0.1:{stub.server_port}",
                              "--listen", f"127.0.0.1:{gport}", "--watch-ms", "0"], stderr=log)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{gport}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("the guard did not answer /healthz")
        url = f"http://127.0.0.1:{gport}/v1/chat/completions"
        for arg in sets:
            name, path = arg.split("=", 1)
            by_source, total, other, ms = {}, [0, 0, 0, 0], 0, []
            for line in open(path, encoding="utf-8"):
                if not line.strip():
                    continue
                r = json.loads(line)
                t0 = time.perf_counter()
                status, _ = post(url, r["text"])
                ms.append((time.perf_counter() - t0) * 1e3)
                if status not in (200, 403):
                    other += 1
                blocked, label = status == 403, r["label"] == 1
                i = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(blocked, label)]
                total[i] += 1
                by_source.setdefault(r.get("source", "?"), [0, 0, 0, 0])[i] += 1
            ms.sort()
            q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]
            print(f"### {name}\n")
            print("| | texts | attacks | precision | recall | F1 | benign FPR | FP | FN |\n|---|---|---|---|---|---|---|---|---|")
            for s in sorted(by_source):
                print(row(s, by_source[s]))
            print(row("**all**", total))
            print(f"\nHTTP round trip through the guard and the stub (one client, sequential): p50 {q(0.5):.1f} ms, "
                  f"p99 {q(0.99):.1f} ms, max {ms[-1]:.1f} ms; answers other than 200 or 403: {other}\n")
    finally:
        guard.terminate()
        guard.wait(timeout=30)
        stub.shutdown()


if __name__ == "__main__":
    main()
