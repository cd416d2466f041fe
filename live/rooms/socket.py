"""The Socket.IO endpoint (python-socketio, async_mode aiohttp). Connections authenticate with `auth: {token}`."""
from __future__ import annotations

import socketio
from aiohttp import web

from live.auth.principal import ANONYMOUS
from live.config import Settings
from live.errors import DomainError


def attach_socketio(app: web.Application, settings: Settings) -> socketio.AsyncServer:
    origins = list(settings.cors_origins)
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*" if "*" in origins else origins or None,
                               max_http_buffer_size=16 * 1024, logger=False, engineio_logger=False)
    sio.attach(app)
    app["sio"] = sio

    @sio.event
    async def connect(sid, environ, auth):
        token = auth.get("token") if isinstance(auth, dict) else None
        principal = ANONYMOUS
        if token:
            try:
                principal = await app["services"].principal_for_token(str(token))
            except DomainError as exc:
                raise socketio.exceptions.ConnectionRefusedError({"code": "unauthorized", "message": exc.message})
        await sio.save_session(sid, {"principal": principal})

    return sio
