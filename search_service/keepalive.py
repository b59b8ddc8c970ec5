"""HTTP/2 keepalive on the server's connections.

A terminal that vanishes without closing its connection (a laptop lid shut, a firewall that drops idle
flows, a process hung) leaves the server nothing to read: without pings its calls stay open until TCP gives
up, hours later, each holding a worker thread and one of its activity's call slots (SECURITY.md). The server
pings a connection idle for `time` seconds and closes it when a ping is not acknowledged within `timeout`,
which ends its calls.

Clients ping too (connectors.client: every 30 s, to keep firewalls' idle timers from dropping a connection
that waits on a long answer). gRPC's default server policy treats a client ping more often than every five
minutes as abuse and answers the third with GOAWAY (too_many_pings), cutting the calls in flight; this server
accepts one every `min_client_ping` seconds, with or without calls.
"""

from __future__ import annotations

from dataclasses import dataclass

Options = list[tuple[str, int]]


@dataclass(frozen=True)
class Keepalive:
    time: float = 60.0  # seconds a connection is idle before the server pings it
    timeout: float = 20.0  # seconds the server waits for the ping's answer before it closes the connection
    min_client_ping: float = 10.0  # the shortest interval between a client's pings that is not a strike
    # Seconds a connection may go without a call before the server closes it (GOAWAY; a client opens a new
    # one at its next call). Pings are no calls: 20,000 connections that never called, from a certificate
    # accredited to nothing, were held for good and used up the server's file descriptors (a
    # misbehaving-terminal review; the balancer's per-source limits stop the opening itself).
    max_idle: float = 300.0

    def __post_init__(self) -> None:
        if not (self.time > 0 and self.timeout > 0 and self.min_client_ping > 0 and self.max_idle > 0):
            raise ValueError("keepalive: time, timeout, min_client_ping and max_idle are positive seconds")

    def server_options(self) -> Options:
        return [
            ("grpc.keepalive_time_ms", _ms(self.time)),
            ("grpc.keepalive_timeout_ms", _ms(self.timeout)),
            ("grpc.keepalive_permit_without_calls", 1),  # idle connections too: a dead one holds a socket
            ("grpc.http2.max_pings_without_data", 0),  # else the server stops pinging after two
            ("grpc.http2.min_ping_interval_without_data_ms", _ms(self.min_client_ping)),
            # grpcio 1.85 closes on an unanswered ping after this one, not keepalive_timeout (default 60 s)
            ("grpc.http2.ping_timeout_ms", _ms(self.timeout)),
            ("grpc.max_connection_idle_ms", _ms(self.max_idle)),
        ]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
