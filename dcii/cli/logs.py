"""Structured log lines on stderr: one JSON object per line (or plain text for a terminal).

Each line has `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, `pid` (which process: a server
may serve from several, `dcii serve --processes`, beside its batch and ingest workers), and the fields the
caller passed in `extra`. Callers pass only non-personal fields (method names, codes, counts, ids the index
makes); names, SSNs and dates of birth never go into a log call. Two safety nets stand behind that rule: an exception is
logged as its type and a stack of file:line frames, never its message (which may quote a value), and
anything shaped like an SSN in the message or a text field is replaced by "[redacted]".

The format is `json` (the default) or `text`: `--log-format`, or the DCII_LOG_FORMAT environment variable,
which configure_logging sets so that child processes (the batch worker) log alike.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any

FORMATS = ("json", "text")
ENV_FORMAT = "DCII_LOG_FORMAT"

# Attributes every LogRecord has; anything else came from `extra=` and is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Nine digits, dashed or not, standing alone: an SSN as a person would write it.
_SSN = re.compile(r"(?<![0-9A-Za-z])\d{3}-?\d{2}-?\d{4}(?![0-9A-Za-z])")
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    return _SSN.sub(REDACTED, value) if isinstance(value, str) else value


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record as the dictionary a line shows."""
    line: dict[str, Any] = {
        "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": _scrub(record.getMessage()),
        "pid": record.process,
    }
    # Ids the index makes (batch_id, disclosure_id) are hex and are left as they are.
    line |= {k: v if k.endswith("_id") else _scrub(v) for k, v in record.__dict__.items() if k not in _STANDARD}
    if record.exc_info and record.exc_info[0] is not None:
        line["error_type"] = record.exc_info[0].__name__
        line["stack"] = [
            f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
            for frame in traceback.extract_tb(record.exc_info[2])
        ]
    return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields_of(record), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = fields_of(record)
        head = f"{line.pop('timestamp')} {line.pop('level'):<7} {line.pop('logger')}: {line.pop('message')}"
        line["pid"] = line.pop("pid")  # last: the fields the caller gave come first
        return " ".join([head, *(f"{k}={json.dumps(v, default=str)}" for k, v in line.items())])


def configure_logging(level: int, fmt: str | None = None) -> None:
    chosen = fmt or os.environ.get(ENV_FORMAT) or "json"
    if chosen not in FORMATS:
        raise ValueError(f"log format {chosen!r}: one of {', '.join(FORMATS)}")
    os.environ[ENV_FORMAT] = chosen
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


# Libraries whose INFO and DEBUG lines would carry what the server sends and receives: opensearch-py logs
# each request and response body at DEBUG (names, dates of birth, the stored body; its `w0` and `w7` match
# keys give the whole SSN back between them) and a line a request at INFO (99.7% of an instance's INFO log);
# urllib3, beneath it, the URLs. Kept at WARNING whatever --log-level says (a review of the OpenSearch backend).
QUIET_LIBRARIES = ("opensearch", "opensearchpy.trace", "urllib3")
