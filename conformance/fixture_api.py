#!/usr/bin/env python3
"""The REST API behind the edge in `make conformance`: one route per fixture tool of the
official MCP conformance suite (conformance/policy.yaml declares the tools that call them).

It answers the way a REST API would, with a body and a content type, and the edge turns each
reply into the tool result the suite expects (DESIGN.md §6.4): text for text/plain, an image
for image/png, and so on. Nothing here speaks MCP.

Usage: fixture_api.py PORT_FILE. Binds a free loopback port, writes it to PORT_FILE once it
listens, and serves until it is terminated. Standard library only.
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A 1x1 red PNG and a 10 ms silent 8 kHz mono WAV: the smallest valid files of their types.
RED_PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
SAMPLES = 80
SILENT_WAV = (
    b"RIFF" + (36 + SAMPLES).to_bytes(4, "little") + b"WAVE"
    + b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little") + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little")
    + (8).to_bytes(2, "little")
    + b"data" + SAMPLES.to_bytes(4, "little") + bytes([128] * SAMPLES)
)


def text(body):
    return 200, "text/plain; charset=utf-8", body.encode()


def as_json(status, value):
    return status, "application/json", json.dumps(value).encode()


def mixed_content():
    # Several content items are several bodies: a multipart/mixed reply, one part per item,
    # each by its own Content-Type; a part with a Content-Location becomes an embedded resource
    # of that URI (DESIGN.md §6.4, OPERATIONS.md "Rich content").
    boundary = "mixed-content-boundary"
    parts = [
        (b"Content-Type: text/plain; charset=utf-8", b"Multiple content types test:"),
        (b"Content-Type: image/png", RED_PIXEL_PNG),
        (
            b"Content-Type: application/json\r\nContent-Location: test://mixed-content-resource",
            json.dumps({"test": "data", "value": 123}).encode(),
        ),
    ]
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n" for head, data in parts)
    return 200, "multipart/mixed; boundary=" + boundary, body + b"--" + boundary.encode() + b"--\r\n"


def slow_text():
    # Long enough for a progress notification once the edge streams them (issue 19 item 5).
    time.sleep(0.2)
    return text("Tool with progress completed.")


# path → what the API answers to GET.
ROUTES = {
    "/api/simple_text": lambda: text("This is a simple text response for testing."),
    "/api/image": lambda: (200, "image/png", RED_PIXEL_PNG),
    "/api/audio": lambda: (200, "audio/wav", SILENT_WAV),
    "/api/embedded_resource": lambda: (200, "application/octet-stream", b"This is an embedded resource content."),
    "/api/mixed_content": mixed_content,
    "/api/error": lambda: as_json(422, {"message": "This tool intentionally returns an error for testing"}),
    "/api/progress": slow_text,
    "/api/json_schema": lambda: as_json(200, {"ok": True}),
    "/api/custom_headers": lambda: as_json(200, {"ok": True}),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        route = ROUTES.get(path)
        if route:
            status, content_type, body = route()
        elif path.startswith("/api/companies/"):
            # The Inspector CLI smoke (.ci/inspector-smoke): the company it asked for.
            status, content_type, body = as_json(200, {"companyId": path.rsplit("/", 1)[1]})
        else:
            status, content_type, body = as_json(404, {"message": "no such fixture"})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        sys.stderr.write("fixture-api: " + (format % args) + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Written whole and renamed, so a reader never sees half a number.
    with open(sys.argv[1] + ".tmp", "w") as port_file:
        port_file.write(str(server.server_address[1]))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
