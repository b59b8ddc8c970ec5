"""The /metrics endpoint's HTTP server: prometheus_client's, bounded.

Its stock server gives every connection a thread of its own, with no timeout and no cap, in the process
that serves gRPC: 500 half-sent requests (no TLS, no certificate needed) held 500 threads until the
connections closed. Here a connection that sends nothing for READ_TIMEOUT seconds is closed, and past
MAX_CONNECTIONS at once a new one is closed unanswered (a scraper retries at its next interval).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from indexer.failures import failure_fields

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0
MAX_CONNECTIONS = 16


class _Handler(WSGIRequestHandler):
    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _BoundedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that idled past the read timeout or hung up is nothing to report; anything else is one
        log line with its type (socketserver's default printed a traceback to stderr, breaking the one JSON
        object a line that the server's log is, for any peer that opened a connection and waited)."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, TimeoutError | ConnectionError):
            log.warning("metrics request failed", extra=failure_fields(error))

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _BoundedServer6(_BoundedServer):
    address_family = socket.AF_INET6


def serve_metrics(host: str, port: int, registry: CollectorRegistry) -> tuple[WSGIServer, threading.Thread]:
    """Serve `registry` at http://host:port/metrics from a daemon thread; (server, thread)."""
    server_class = _BoundedServer6 if ":" in host else _BoundedServer
    httpd = make_server(host.strip("[]"), port, make_wsgi_app(registry), server_class, handler_class=_Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return httpd, thread
