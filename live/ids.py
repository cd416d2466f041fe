"""What an id looks like: the uuid pattern every layer checks input against (REST path and body models, socket
payloads, cursors, webhook fields) before anything reaches the database."""
from __future__ import annotations

import re

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID)


def is_uuid(value: str) -> bool:
    return _UUID.match(value) is not None
