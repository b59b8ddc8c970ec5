"""Clients of a server that serves from several processes (`dcii serve --processes`), and which process
accepted each one's connection: read from the kernel, the server side of each TCP connection to the port and
the process that holds its socket (/proc, Linux-only like the server's deployment)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import grpc

from search_service import pki
from tests.support import Client, Index, free_port


def socket_inodes(port: int) -> set[int]:
    """Inodes of the server side of established TCP connections on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], int(fields[9])
            if local_port == port and state == "01" and inode:
                found.add(inode)
    return found


def holder(pids: list[int], inode: int) -> int | None:
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


class Terminal:
    """A client with a connection of its own (not shared with another channel to the same address), and
    the process that accepted it."""

    def __init__(self, index: Index, cert: pki.Issued, token_metadata: tuple[tuple[str, str], ...]) -> None:
        server_pids = [os.getpid(), *index.running.replicas.pids]  # type: ignore[union-attr]
        before = socket_inodes(index.port)
        credentials = grpc.ssl_channel_credentials(index.ca.cert_pem, cert.key_pem, cert.cert_pem)
        options = [("grpc.use_local_subchannel_pool", 1)]
        channel = grpc.secure_channel(f"localhost:{index.port}", credentials, options=options)
        grpc.channel_ready_future(channel).result(timeout=30)
        self.client = Client(channel, metadata=token_metadata)
        new: set[int] = set()
        deadline = time.monotonic() + 10
        while not new and time.monotonic() < deadline:
            new = socket_inodes(index.port) - before
        assert len(new) == 1, f"one new connection expected, {len(new)} seen"
        self.process = holder(server_pids, new.pop())
        assert self.process in server_pids


def two_free_ports() -> int:
    """A port P with P + 1 free as well (replica 1 serves its metrics on P + 1)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def terminal_on(index: Index, cert: pki.Issued, pids: Iterable[int]) -> Terminal:
    """A Terminal whose connection one of `pids` accepted (new connections until the kernel gives one)."""
    wanted = set(pids)
    for _ in range(200):
        terminal = Terminal(index, cert, ())
        if terminal.process in wanted:
            return terminal
        terminal.client.close()
    raise AssertionError(f"200 connections, none accepted by {sorted(wanted)}")
