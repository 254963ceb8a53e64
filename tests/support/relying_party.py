"""A relying party's redirect endpoint for browser tests: a tiny HTTP server on 127.0.0.1
that records the paths it is sent to and answers "signed in"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _ClientApp(BaseHTTPRequestHandler):
    reached: list[str]

    def do_GET(self) -> None:
        self.reached.append(self.path)
        body = b"<!doctype html><title>app</title><p>signed in</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def client_app() -> Iterator[tuple[str, list[str]]]:
    """The app's base URL and the list of paths it was sent to, while it runs."""
    reached: list[str] = []
    handler = type("Handler", (_ClientApp,), {"reached": reached})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reached
    finally:
        server.shutdown()
        server.server_close()
