#!/usr/bin/env python3
"""A webhook receiver that verifies Standard Webhooks signatures exactly as the specification
describes (standard-webhooks.md, "Verifying webhooks"), with Python's standard library only.

    webhook_verify.py PORT SECRET

Prints one line per request, `verified <webhook-id>` or `refused <why>`, and answers 204 or 401.
The secret has the spec's form `whsec_<base64 key>`; timestamps more than 5 minutes from this
machine's clock are refused (replays).
"""
import base64
import hashlib
import hmac
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2]
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
TOLERANCE_S = 5 * 60


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        msg_id = self.headers.get("webhook-id")
        ts = self.headers.get("webhook-timestamp")
        given = self.headers.get("webhook-signature", "")
        why = None
        if not msg_id or not ts or not ts.isdigit():
            why = "missing headers"
        elif abs(time.time() - int(ts)) > TOLERANCE_S:
            why = "timestamp outside tolerance"
        else:
            signed = f"{msg_id}.{ts}.".encode() + body
            expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
            versioned = [s.split(",", 1) for s in given.split(" ") if "," in s]
            if not any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in versioned):
                why = "signature mismatch"
        print(f"refused {why}" if why else f"verified {msg_id}", flush=True)
        self.send_response(401 if why else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
