"""Logs are one JSON object per line, with the extra fields a caller passes."""

from __future__ import annotations

import logging

import orjson

from hub.infrastructure.logs import JsonFormatter


def test_log_record_is_json_with_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "hub.test", "levelname": "WARNING", "msg": "shop %s paused", "args": (12,)}
    )
    record.shop_id = 12
    document = orjson.loads(JsonFormatter().format(record))
    assert document["message"] == "shop 12 paused"
    assert document["level"] == "warning"
    assert document["shop_id"] == 12
