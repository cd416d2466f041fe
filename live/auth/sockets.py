"""Open sockets follow sign-in changes (AuthStates.on_change), on every worker: a user who was suspended or
signed out is disconnected (their tokens no longer work, so a reconnect is refused); a user whose role changed
keeps their sockets with the new role. Sockets authenticate at connect (Services.principal_for_token)."""
from __future__ import annotations

import asyncio
import dataclasses

from live.auth.sessions import AuthState
from live.logging import get_logger

log = get_logger("live.auth")
_cuts: set[asyncio.Task] = set()  # disconnects under way (held so they are not collected mid-way)


def follow_sockets(gateway):
    """An AuthStates.on_change hook acting on the gateway's sockets of that user (gateway.by_user, .conns)."""
    def on_change(user_id: str, old: AuthState | None, new: AuthState) -> None:
        sids = [sid for sid in gateway.by_user.get(user_id, ()) if sid in gateway.conns]
        if not sids:
            return
        if new.suspended or (new.valid_after is not None and (old is None or old.valid_after != new.valid_after)):
            for sid in sids:
                task = asyncio.get_running_loop().create_task(_disconnect(gateway, sid))
                _cuts.add(task)
                task.add_done_callback(_cuts.discard)
        else:
            for sid in sids:
                conn = gateway.conns[sid]
                if conn.principal.role != new.role:
                    conn.principal = dataclasses.replace(conn.principal, role=new.role)
    return on_change


async def _disconnect(gateway, sid: str) -> None:
    try:
        await gateway.sio.disconnect(sid)
    except Exception:
        log.exception("socket_cut_failed", sid=sid)
