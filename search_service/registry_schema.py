"""The registry's tables (search_service.registry), and the change an older registry file gains when opened."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS activity (
    activity_id TEXT PRIMARY KEY, agency TEXT NOT NULL, roles TEXT NOT NULL, purposes TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certificate (
    fingerprint TEXT PRIMARY KEY, activity_id TEXT NOT NULL REFERENCES activity, added_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS operator (
    account_code TEXT PRIMARY KEY, activity_id TEXT NOT NULL REFERENCES activity, password_hash TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, last_login_at TEXT, failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT, active_since TEXT
);
CREATE TABLE IF NOT EXISTS session (
    token_hash TEXT PRIMARY KEY, account_code TEXT NOT NULL, fingerprint TEXT NOT NULL,
    expires_at TEXT NOT NULL, ended INTEGER NOT NULL DEFAULT 0
);
-- Suspending an operator or an activity ends its sessions by account, under the registry's write lock.
CREATE INDEX IF NOT EXISTS session_account ON session (account_code);
"""


def add_active_since(conn: sqlite3.Connection) -> None:
    """A registry file made before operator.active_since (when the account was last made active) gains it,
    empty: "unknown", its accounts' dormancy counts from their last login or creation, as it did then.
    Checked again under the write lock: another process (the CLI, a second instance) may be adding it."""
    column = "SELECT 1 FROM pragma_table_info('operator') WHERE name = 'active_since'"
    if conn.execute(column).fetchone() is None:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute(column).fetchone() is None:
            conn.execute("ALTER TABLE operator ADD COLUMN active_since TEXT")
