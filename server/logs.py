"""Log lines as text or, with KAIFANG_LOG_FORMAT=json, one JSON object a line: `time` (ISO
8601, UTC), `level`, `logger`, `message`, and the record's extra fields, for a log shipper
(journald, Loki, Elasticsearch) to read without a parser of its own.

Today's rule holds in both: no token and no personal data in any line. The filters that
ensure it (server.access_log: paths masked, uvicorn's websocket lines without their query
string and address) change the record before any formatter sees it, so they work here too;
an exception is written as its type and its frames, never its text (which may quote a
request's values or a statement's parameters).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
# What every LogRecord has: not "extra" fields. `color_message` is uvicorn's coloured copy of
# the format string; `message` and `asctime` are set by formatters.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "color_message", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["traceback"] = "".join(traceback.format_tb(record.exc_info[2])).rstrip()
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def basic_config(log_format: str, level: int = logging.INFO) -> None:
    """The root logger to stderr in the format asked (`kaifang worker`); Python's warnings
    become log lines too, so that every line of stderr is of that format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if log_format == "json":
        logging.captureWarnings(True)


def json_dict_config(config: dict[str, Any]) -> dict[str, Any]:
    """Uvicorn's logging config (a dictConfig) writing JSON: its formatters replaced, and the
    root logger (libraries' warnings) and Python's warnings (once `logging.captureWarnings`)
    sent to the same stderr handler. Filters are kept as they are."""
    for name in config.get("formatters", {}):
        config["formatters"][name] = {"()": "server.logs.JsonFormatter"}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    config["loggers"]["py.warnings"] = {"handlers": ["default"], "level": "WARNING",
                                        "propagate": False}
    return config
