#!/usr/bin/env python3
"""A stand-in for Alibaba Cloud SMS (dysmsapi SendSms) that checks every request's signature
with its own implementation of the documented algorithm (RPC signature 1.0, HMAC-SHA1), written
from the provider's documentation and independent of gridsentry's Rust code.

usage: aliyun_sms.py PORT_FILE ACCESS_KEY_ID ACCESS_KEY_SECRET LOG_FILE

Binds a free loopback port (written to PORT_FILE), answers as the provider does ({"Code": "OK",
"BizId": ...} or an error code), and appends one JSON line per request to LOG_FILE:
{"phone", "param", "sign_name", "template", "out_id", "valid", "why"}.
"""
import base64, hashlib, hmac, http.server, json, sys, time, urllib.parse, uuid, datetime

port_file, key_id, key_secret, log_file = sys.argv[1:5]
seen_nonces = set()


def enc(s):
    # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are.
    return urllib.parse.quote(s, safe="-_.~")


def expected_signature(method, params):
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
    mac = hmac.new((key_secret + "&").encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        signature = params.pop("Signature", "")
        why = ""
        if params.get("AccessKeyId") != key_id:
            why = "InvalidAccessKeyId.NotFound"
        elif not hmac.compare_digest(signature, expected_signature("POST", params)):
            why = "SignatureDoesNotMatch"
        elif params.get("SignatureNonce") in seen_nonces:
            why = "SignatureNonceUsed"
        else:
            ts = datetime.datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
            ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
            if abs(time.time() - ts) > 900:
                why = "InvalidTimeStamp.Expired"
        for k in ["Action", "Version", "SignatureMethod", "SignatureVersion", "PhoneNumbers", "SignName", "TemplateCode"]:
            if not why and not params.get(k):
                why = "MissingParameter " + k
        if not why and (params["Action"], params["Version"], params["SignatureMethod"]) != ("SendSms", "2017-05-25", "HMAC-SHA1"):
            why = "InvalidParameter"
        seen_nonces.add(params.get("SignatureNonce"))
        with open(log_file, "a") as f:
            f.write(json.dumps({
                "phone": params.get("PhoneNumbers"), "param": params.get("TemplateParam"),
                "sign_name": params.get("SignName"), "template": params.get("TemplateCode"),
                "out_id": params.get("OutId"), "valid": not why, "why": why,
            }, ensure_ascii=False) + "\n")
        if why:
            answer, status = {"Code": why, "Message": why, "RequestId": str(uuid.uuid4())}, 400
        else:
            answer, status = {"Code": "OK", "Message": "OK", "BizId": str(uuid.uuid4().int)[:18] + "^0", "RequestId": str(uuid.uuid4())}, 200
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
