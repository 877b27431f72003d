#!/usr/bin/env python3
"""A fake Docker Engine API on a unix socket, for the replies a real
engine gives only when something is wrong. `/images/{name}/json` answers
404; `POST /images/load` reads the chunked archive and then, per MODE:

  error-detail  200 and a JSON message stream whose last line is an
                errorDetail (moby's current form, no bare `error` key)
  empty         200 with no message at all
  hang          never answers (after reading the whole archive)
  no-read       never reads the archive, never answers
  ok            200 {"stream":"Loaded image: fake:latest"}

    fake-engine.py SOCKET MODE
"""
import json, os, socket, sys, threading, time

path, mode = sys.argv[1], sys.argv[2]

def read_chunked(rf):
    total = 0
    while True:
        size = int(rf.readline(1024).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            rf.readline(1024)
            return total
        total += len(rf.read(size))
        rf.readline(1024)

def answer(c, status, lines):
    body = b"".join(json.dumps(l).encode() + b"\r\n" for l in lines)
    c.sendall(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

def serve(c):
    rf = c.makefile("rb")
    line = rf.readline(65536)
    headers = {}
    while True:
        l = rf.readline(65536)
        if l in (b"\r\n", b"\n", b""):
            break
        k, v = l.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if b"/images/load" not in line:
        answer(c, 404, [{"message": "No such image"}])
        return
    if mode == "no-read":
        time.sleep(3600)
    n = read_chunked(rf)
    sys.stderr.write(f"fake-engine: read {n} bytes\n")
    if mode == "hang":
        time.sleep(3600)
    elif mode == "error-detail":
        answer(c, 200, [{"status": "Loading layer", "progressDetail": {"current": 1, "total": 2}, "id": "abc"},
                        {"errorDetail": {"message": "failed to register layer: no space left on device"}}])
    elif mode == "empty":
        answer(c, 200, [])
    else:
        answer(c, 200, [{"stream": "Loaded image: fake:latest\n"}])

s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
