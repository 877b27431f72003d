#!/usr/bin/env python3
"""A fault-injecting proxy in front of a real registry (docker-registry on
loopback), for tests of registry clients against quirky and hostile
servers. The registry stores and serves; the proxy forwards every request
to it and injects one behaviour (--fault), and logs every request it sees,
headers included, so a test can tell which origin received credentials.

    fault-proxy.py --upstream PORT --main PORT --other PORT --sink PORT
                   --log FILE [--ports FILE] [--cert CRT --key KEY] [--fault NAME]
                   [--limit BYTES]

A port of 0 picks a free one; --ports FILE receives {"main", "other",
"sink"} once every listener listens.

Listeners, all on 127.0.0.1:
  main   the registry as the client knows it. With --cert, a connection
         starting with a TLS handshake is served over TLS and any other
         over plain HTTP (logged as such): one host:port, two origins.
  other  another origin that forwards to the same registry (a redirect
         target, blob storage); TLS like main.
  sink   a third origin that forwards nothing (a token realm, a host a
         redirect leads to): it answers 401 or a token.
Log lines are JSON: {"listener", "scheme", "method", "path", "headers"}.

--fault referrers-api gives the registry (distribution 2.8 has none) the
OCI 1.1 referrers API: a manifest put with a `subject` is answered with
`OCI-Subject`, and `GET /v2/<name>/referrers/<digest>` with an index of
the manifests seen put for that subject. referrers-api-no-header answers
the endpoint but sends no `OCI-Subject`, as registries of the 1.1 release
candidates did.
"""
import argparse, hashlib, http.client, json, os, re, socket, ssl, sys, threading, time

p = argparse.ArgumentParser()
for name in ("upstream", "main", "other", "sink"):
    p.add_argument("--" + name, type=int, required=True)
p.add_argument("--log", required=True)
p.add_argument("--ports", help="write the listeners' ports here (JSON), once all listen")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--fault", default="none")
p.add_argument("--limit", type=int, default=1 << 20)
args = p.parse_args()

log_lock = threading.Lock()
state_lock = threading.Lock()
counts = {}

def once(key):
    """True the first time `key` is seen."""
    with state_lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key] == 1

def log(entry):
    with log_lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"}

class Closed(Exception):
    pass

def read_body(rf, h):
    if h.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(rf.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rf.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += rf.read(size)
            rf.readline(1024)
    n = int(h.get("content-length", "0") or 0)
    return rf.read(n) if n else b""

def read_chunked_upto(rf, limit):
    """A chunked body's bytes until more than `limit` came or it ended:
    (bytes, whether it ended)."""
    got = bytearray()
    while len(got) <= limit:
        size = int(rf.readline(1024).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rf.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(got), True
        got += rf.read(size)
        rf.readline(1024)
    return bytes(got), False

def respond(c, status, headers=(), body=b"", head=False, close=False):
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'X')}"]
    has_len = False
    for k, v in headers:
        if k.lower() in HOP:
            continue
        if k.lower() == "content-length":
            if not head:
                continue
            has_len = True
        lines.append(f"{k}: {v}")
    if not head or not has_len:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close" if close else "Connection: keep-alive")
    c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body))

def error_body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()

def forward(method, path, h, body, scheme, host):
    conn = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=120)
    headers = {k: v for k, v in h.items() if k not in HOP and k not in ("content-length", "expect")}
    headers["host"] = host
    headers["x-forwarded-proto"] = scheme
    if body or method in ("PUT", "POST", "PATCH"):
        headers["content-length"] = str(len(body))
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read() if method != "HEAD" else b""
    out = (r.status, [(k, v) for k, v in r.getheaders()], data)
    conn.close()
    return out

def set_header(headers, name, value):
    return [(k, v) for k, v in headers if k.lower() != name.lower()] + [(name, value)]

def get_header(headers, name):
    return next((v for k, v in headers if k.lower() == name.lower()), None)

def origin(listener, scheme):
    port = {"main": args.main, "other": args.other, "sink": args.sink}[listener]
    return f"{scheme}://127.0.0.1:{port}"

def handle_sink(c, method, path, h):
    if path.startswith("/token") and args.fault == "token-500":
        respond(c, 500, [("Content-Type", "text/plain")], b"token backend down")
    elif path.startswith("/token"):
        respond(c, 200, [("Content-Type", "application/json")], json.dumps({"token": "sink-token"}).encode())
    else:
        respond(c, 401, [("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{args.sink}/token",service="sink"')], error_body("UNAUTHORIZED", "sink"))

referrers = {}
REFERRERS_PATH = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})(\?.*)?$")

def record_referrer(path, body, content_type):
    """The descriptor a referrers listing gives a manifest put with a subject; its subject."""
    try:
        m = json.loads(body)
    except ValueError:
        return None
    subject = (m.get("subject") or {}).get("digest") if isinstance(m, dict) else None
    if not subject:
        return None
    repo = path[len("/v2/"):].split("/manifests/")[0]
    d = {"mediaType": m.get("mediaType", content_type), "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}
    at = m.get("artifactType") or (m.get("config") or {}).get("mediaType")
    if at:
        d["artifactType"] = at
    if m.get("annotations"):
        d["annotations"] = m["annotations"]
    with state_lock:
        listed = referrers.setdefault((repo, subject), [])
        if all(x["digest"] != d["digest"] for x in listed):
            listed.append(d)
    return subject

def handle(listener, c, scheme):
    """Serves requests on one connection; False ends it."""
    rf = c.makefile("rb")
    while True:
        line = rf.readline(65536)
        if not line:
            return
        method, path, _ = line.decode("latin-1").split(" ", 2)
        h = {}
        while True:
            l = rf.readline(65536)
            if l in (b"\r\n", b"\n", b""):
                break
            k, v = l.decode("latin-1").split(":", 1)
            h[k.strip().lower()] = v.strip()
        log({"listener": listener, "scheme": scheme, "method": method, "path": path, "headers": h, "t": time.time()})
        if listener == "sink":
            read_body(rf, h)
            handle_sink(c, method, path, h)
            continue
        f = args.fault
        is_patch = method == "PATCH" and "/blobs/uploads/" in path
        is_commit = method == "PUT" and "/blobs/uploads/" in path and "digest=" in path
        is_manifest_put = method == "PUT" and "/manifests/" in path
        # Faults that act before the body is read.
        if f == "hang-ping" and path.startswith("/v2/") and path.rstrip("/") == "/v2":
            time.sleep(3600)
        if f == "stall-patch" and is_patch:
            time.sleep(3600)
        if f == "cap" and is_patch:
            chunked = h.get("transfer-encoding", "").lower() == "chunked"
            length = int(h.get("content-length", "0") or 0)
            if chunked or length > args.limit:
                # As nginx's client_max_body_size: refuse, drain what was
                # sent (bounded), close.
                respond(c, 413, [("Content-Type", "text/html")], b"<html>413 Request Entity Too Large</html>", close=True)
                if not chunked:
                    rf.read(length)
                rf.close()
                c.close()
                return
        if f == "expect-417" and h.get("expect", "").lower() == "100-continue":
            # Old proxies: Expect is refused, and the body (if sent) ignored.
            respond(c, 417, [("Content-Type", "text/plain")], b"Expectation Failed", close=True)
            rf.close()
            c.close()
            return
        # As Go's and nginx's servers: a client that asks before sending
        # a body (Expect: 100-continue) is told to go on.
        if h.get("expect", "").lower() == "100-continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = None
        if f == "cap-late" and is_patch and h.get("transfer-encoding", "").lower() == "chunked":
            # As nginx's client_max_body_size on a chunked body: a 413 once
            # the cap is passed, mid-body; then a lingering close (the rest
            # is read and dropped, for a bounded time), so that the client
            # can read the answer. A body within the cap goes on.
            got, ended = read_chunked_upto(rf, args.limit)
            if ended:
                body = got
            if body is None:
                respond(c, 413, [("Content-Type", "text/html")], b"<html>413 Request Entity Too Large</html>", close=True)
                c.settimeout(5)
                end = time.time() + 30
                try:
                    while time.time() < end and rf.read1(1 << 16):
                        pass
                except OSError:
                    pass
                rf.close()
                c.close()
                return
        # A connection reset in the middle of a large PATCH (once, or every
        # time): the first 2 MiB are read, then RST. Smaller bodies go on.
        if f in ("reset-patch", "reset-always") and is_patch and h.get("transfer-encoding", "").lower() == "chunked":
            got, ended = read_chunked_upto(rf, 2 << 20)
            if ended:
                body = got
            elif f == "reset-always" or once("reset"):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                rf.close()
                c.close()
                return
            else:
                body = got + read_body(rf, h)
        if f == "reset-always" and is_patch and "content-range" in h:
            rf.read1(64 << 10)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            rf.close()
            c.close()
            return
        if f == "drop-once" and is_patch and once("drop"):
            rf.read1(16 << 10)
            rf.close()
            c.close()
            return
        if body is None:
            body = read_body(rf, h)
        host = h.get("host", "")
        if f == "patch-401-once" and is_patch and once("p401"):
            respond(c, 401, [("WWW-Authenticate", 'Basic realm="li-test"')], error_body("UNAUTHORIZED", "token expired"))
            continue
        if f == "redirect-third" and listener == "other":
            respond(c, 401, [("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{args.sink}/token",service="third"')], error_body("UNAUTHORIZED", "other"))
            continue
        if f == "redirect-third" and method in ("HEAD", "GET") and "/blobs/sha256:" in path:
            respond(c, 307, [("Location", f"{origin('other', scheme)}{path}")], head=method == "HEAD")
            continue
        if f in ("redirect-put", "redirect-put-other") and is_commit and "redirected=1" not in path:
            where = origin("other" if f == "redirect-put-other" else "main", scheme)
            respond(c, 307, [("Location", f"{where}{path}&redirected=1")])
            continue
        if f == "refuse-oci-index" and is_manifest_put and "oci.image.index" in h.get("content-type", ""):
            respond(c, 400, [("Content-Type", "application/json")], error_body("MANIFEST_INVALID", "manifest invalid"))
            continue
        if f == "refuse-oci" and is_manifest_put and "oci" in h.get("content-type", ""):
            respond(c, 400, [("Content-Type", "application/json")], error_body("MANIFEST_INVALID", "manifest invalid"))
            continue
        if f == "deny-post" and method == "POST":
            respond(c, 403, [("Content-Type", "application/json")], error_body("DENIED", "requested access to the resource is denied"))
            continue
        if f == "head-size-lie" and method == "HEAD" and "/blobs/sha256:" in path:
            digest = path.rsplit("/", 1)[1]
            respond(c, 200, [("Content-Length", "12345"), ("Docker-Content-Digest", digest)], head=True)
            continue
        if f.startswith("referrers-api") and method in ("GET", "HEAD") and REFERRERS_PATH.match(path):
            repo, subject = REFERRERS_PATH.match(path).group(1, 2)
            with state_lock:
                listed = list(referrers.get((repo, subject), []))
            index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed}).encode()
            respond(c, 200, [("Content-Type", "application/vnd.oci.image.index.v1+json")], index, head=method == "HEAD")
            continue
        fwd_path = path.replace("&redirected=1", "")
        status, headers, data = forward(method, fwd_path, h, body, scheme, host)
        # Faults on the registry's answer.
        if f in ("realm-http", "token-500") and status == 401:
            headers = set_header(headers, "WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{args.sink}/token",service="li"')
        if f == "location-http" and method == "POST" and status == 202:
            loc = get_header(headers, "Location")
            headers = set_header(headers, "Location", loc.replace("https://", "http://", 1))
        if f == "relative-location" and method == "POST" and status == 202:
            loc = get_header(headers, "Location")
            headers = set_header(headers, "Location", loc.split("?")[0].rsplit("/", 1)[1] + "?" + loc.split("?", 1)[1])
        if f == "digest-lie" and is_commit and status == 201:
            headers = set_header(headers, "Docker-Content-Digest", "sha256:" + "0" * 64)
        if f.startswith("referrers-api") and is_manifest_put and 200 <= status < 300:
            subject = record_referrer(path, body, h.get("content-type", ""))
            if subject and f == "referrers-api":
                headers = set_header(headers, "OCI-Subject", subject)
        if f == "manifest-202" and is_manifest_put and status == 201:
            status = 202
        respond(c, status, headers, data, head=method == "HEAD")

def serve_conn(listener, c, ctx):
    scheme = "http"
    try:
        c.settimeout(300)
        tls_hello = c.recv(1, socket.MSG_PEEK) == b"\x16"
        if tls_hello and ctx is None:
            # As a plain HTTP server does (Go's): 400 to a TLS handshake.
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        if tls_hello:
            c = ctx.wrap_socket(c, server_side=True)
            scheme = "https"
        handle(listener, c, scheme)
    except (OSError, ValueError, ssl.SSLError):
        pass
    finally:
        try:
            c.close()
        except OSError:
            pass

def serve(listener, s, ctx):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_conn, args=(listener, c, ctx), daemon=True).start()

ctx = None
if args.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
# Every listener is bound before any is announced; port 0 picks a free
# one, so that tests running side by side never race for a port.
socks = {}
for name in ("main", "other", "sink"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", getattr(args, name)))
    s.listen(64)
    socks[name] = s
    setattr(args, name, s.getsockname()[1])
if args.ports:
    with open(args.ports + ".tmp", "w") as f:
        json.dump({name: getattr(args, name) for name in socks}, f)
    os.rename(args.ports + ".tmp", args.ports)
for name in ("other", "sink"):
    threading.Thread(target=serve, args=(name, socks[name], ctx if name != "sink" else None), daemon=True).start()
serve("main", socks["main"], ctx)
