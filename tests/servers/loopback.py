"""What the HTTP stand-ins of providers' APIs (Twilio, SMSAPI) share: a threaded server on a free loopback port,
started and stopped by their fixtures."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .smtp import HOST


class LoopbackHttpServer:
    """Serves `handler()`'s requests on 127.0.0.1 in a daemon thread between start() and stop()."""

    thread_name = "stand-in-server"
    _httpd: ThreadingHTTPServer | None
    _thread: threading.Thread | None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._httpd.server_port}"

    def start(self) -> None:
        self._httpd = ThreadingHTTPServer((HOST, 0), self.handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
