"""The files a server opens at its start: the store, the registry and the audit trail, each refused in one
line when it cannot be used (search_service.sqlite_files.opened), and its metrics."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from indexer.exc import FailedPrecondition
from indexer.store.base import TracingStore
from indexer.store.factory import describe, open_store
from search_service.accounting import AuditLog, load_or_create_key
from search_service.audit_writable import check_writable
from search_service.metrics import ServerMetrics
from search_service.registry import Registry
from search_service.sqlite_files import opened

if TYPE_CHECKING:
    from search_service.server import ServerConfig


def open_files(
    config: ServerConfig, store: TracingStore | None, closing: contextlib.ExitStack
) -> tuple[TracingStore, Registry, AuditLog]:
    """The store, registry and audit trail, each closed by `closing` if the start goes no further."""
    try:
        location = config.store_location
        index = store or opened(describe(location), "the index", lambda: open_store(location))
    except ValueError as error:  # a --store URL no backend takes (its messages name no password)
        raise FailedPrecondition(f"--store: {error}") from error
    if store is None:
        closing.callback(index.close)
    registry = opened(config.registry_path, "the registry", lambda: Registry(config.registry_path))
    closing.callback(registry.close)
    audit = open_audit(config)
    closing.callback(audit.close)
    return index, registry, audit


def open_audit(config: ServerConfig) -> AuditLog:
    """The audit trail, checked writable: else every answer would be refused (failing closed) after a start
    that looked well."""
    audit = AuditLog(
        config.audit_path,
        key=load_or_create_key(config.data_dir / "audit.key", trail=config.audit_path),
        timeout=config.audit_timeout,
    )
    try:
        check_writable(config.audit_path, timeout=config.audit_timeout)
    except BaseException:
        audit.close()
        raise
    return audit


def metrics_for(config: ServerConfig, audit: AuditLog) -> ServerMetrics | None:
    """The server's metrics when a port is set for them, the audit trail's writes observed."""
    if config.metrics_port is None:
        return None
    metrics = ServerMetrics()
    audit.observe_writes(metrics.audit_written)
    return metrics
