"""A local fake of LiveKit's server API: Twirp over real HTTP (`POST /twirp/livekit.RoomService/<Method>`, protobuf
bodies). Every call's `Authorization: Bearer <jwt>` is verified with the API key and secret (livekit-api's
TokenVerifier: HS256 signature, issuer, expiry) and must carry the grant LiveKit requires (RemoveParticipant:
roomAdmin for that room; DeleteRoom: roomCreate); a refused call is 401 as LiveKit answers. Rooms and their
participants are kept in memory; `fail_next` makes the next calls answer 503 (a server restarting)."""
from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api as lk


class FakeLiveKit:
    def __init__(self, key: str, secret: str):
        self.verifier = lk.TokenVerifier(key, secret)
        self.rooms: dict[str, set[str]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.refused = 0
        self.fail_next = 0
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/{method}", self.handle)
        self.server = TestServer(app)

    async def start(self) -> str:
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        await self.server.close()

    @staticmethod
    def _error(status: int, code: str, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        if request.headers.get("Content-Type") != "application/protobuf" or not auth.startswith("Bearer "):
            self.refused += 1
            return self._error(401, "unauthenticated", "missing token")
        try:
            grants = self.verifier.verify(auth[7:]).video
        except Exception as exc:  # noqa: BLE001 - any verification failure is a refused call
            self.refused += 1
            return self._error(401, "unauthenticated", str(exc))
        body = await request.read()
        if method == "RemoveParticipant":
            req = lk.RoomParticipantIdentity.FromString(body)
            if not grants.room_admin or grants.room != req.room:
                self.refused += 1
                return self._error(403, "permission_denied", "needs roomAdmin for the room")
            reply = lk.RemoveParticipantResponse()
            args = {"room": req.room, "identity": req.identity}
        elif method == "DeleteRoom":
            req = lk.DeleteRoomRequest.FromString(body)
            if not grants.room_create:
                self.refused += 1
                return self._error(403, "permission_denied", "needs roomCreate")
            reply = lk.DeleteRoomResponse()
            args = {"room": req.room}
        else:
            return self._error(404, "bad_route", method)
        self.calls.append((method, args))
        if self.fail_next:
            self.fail_next -= 1
            return self._error(503, "unavailable", "restarting")
        if method == "RemoveParticipant":
            if args["identity"] not in self.rooms.get(args["room"], set()):
                return self._error(404, "not_found", "participant not found")
            self.rooms[args["room"]].discard(args["identity"])
        else:
            if self.rooms.pop(args["room"], None) is None:
                return self._error(404, "not_found", "room not found")
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")
