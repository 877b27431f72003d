#!/usr/bin/env python3
"""A token service for distribution's `auth: token` (the protocol Docker
Hub, GHCR and Quay speak): checks HTTP basic credentials against one user,
grants the scopes asked for, and answers with an RS256 JWT signed by
openssl with a key whose certificate the registry trusts (sent in x5c).

    token-service.py PORT KEY.pem CERT.pem USER PASSWORD SERVICE ISSUER
Listens on 127.0.0.1 only; logs one line per token request to stderr.
"""
import base64, http.server, json, subprocess, sys, time, urllib.parse, uuid

port, key, cert, user, password, service, issuer = sys.argv[1:8]

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def der(pem_path):
    pem = open(pem_path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())  # standard base64 of the DER, as x5c wants

def sign(payload):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [der(cert)]}
    signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input, capture_output=True, check=True).stdout
    return signing_input.decode() + "." + b64(sig)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        ok = auth == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        sys.stderr.write(f"token request scopes={q.get('scope')} authorized={ok}\n")
        if not ok:
            self.send_response(401)
            self.end_headers()
            return
        access = []
        for scope in q.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (None, None, None)
            if kind == "repository":
                access.append({"type": "repository", "name": name, "actions": actions.split(",")})
        now = int(time.time())
        token = sign({"iss": issuer, "sub": user, "aud": service, "exp": now + 600, "nbf": now - 10,
                      "iat": now, "jti": str(uuid.uuid4()), "access": access})
        body = json.dumps({"token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
