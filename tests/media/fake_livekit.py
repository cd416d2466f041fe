"""A local fake of LiveKit's server API: Twirp over real HTTP (`POST /twirp/livekit.<Service>/<Method>`, protobuf
bodies). Every call's `Authorization: Bearer <jwt>` is verified with the API key and secret (livekit-api's
TokenVerifier: HS256 signature, issuer, expiry) and must carry the grant LiveKit requires (RemoveParticipant:
roomAdmin for that room; DeleteRoom, CreateRoom: roomCreate; IngressService: ingressAdmin; EgressService:
roomRecord); a refused call is 401 as LiveKit answers. Rooms and their participants, ingresses and egresses are
kept in memory; `fail_next` makes the next calls answer 503 (a server restarting), `fail_method[name] = n` the
next n calls of one method, `refuse_next` 400 (`invalid_argument`), `delay` holds each answer that many seconds (a
slow server)."""
from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api as lk

KEY, SECRET = "lk-key", "lk-secret-" + "x" * 30  # the API key and secret the tests' LiveKit settings use


class FakeLiveKit:
    def __init__(self, key: str, secret: str):
        self.verifier = lk.TokenVerifier(key, secret)
        self.rooms: dict[str, set[str]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.refused = 0
        self.fail_next = 0
        self.refuse_next = 0
        self.delay = 0.0
        self.fail_method: dict[str, int] = {}  # method -> how many of its next calls answer 503
        self.ingresses: dict[str, lk.IngressInfo] = {}
        self.egresses: dict[str, lk.EgressInfo] = {}
        self.created = 0
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/{method}", self.handle)
        app.router.add_post("/twirp/livekit.Ingress/{method}", self.handle_ingress)
        app.router.add_post("/twirp/livekit.Egress/{method}", self.handle_egress)
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
        elif method == "CreateRoom":
            req = lk.CreateRoomRequest.FromString(body)
            if not grants.room_create:
                self.refused += 1
                return self._error(403, "permission_denied", "needs roomCreate")
            reply = lk.Room(name=req.name, sid="RM_" + req.name)
            args = {"room": req.name}
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
        if method == "CreateRoom":
            self.rooms.setdefault(args["room"], set())
        elif method == "RemoveParticipant":
            if args["identity"] not in self.rooms.get(args["room"], set()):
                return self._error(404, "not_found", "participant not found")
            self.rooms[args["room"]].discard(args["identity"])
        else:
            if self.rooms.pop(args["room"], None) is None:
                return self._error(404, "not_found", "room not found")
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")

    async def _verified(self, request: web.Request, grant: str):
        """The call's body when its token is valid and has `grant`, else the refusal to answer."""
        auth = request.headers.get("Authorization", "")
        if request.headers.get("Content-Type") != "application/protobuf" or not auth.startswith("Bearer "):
            self.refused += 1
            return None, self._error(401, "unauthenticated", "missing token")
        try:
            grants = self.verifier.verify(auth[7:]).video
        except Exception as exc:  # noqa: BLE001 - any verification failure is a refused call
            self.refused += 1
            return None, self._error(401, "unauthenticated", str(exc))
        if not getattr(grants, grant):
            self.refused += 1
            return None, self._error(403, "permission_denied", f"needs {grant}")
        return await request.read(), None

    async def _failure(self, method: str = "") -> web.Response | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_method.get(method):
            self.fail_method[method] -= 1
            return self._error(503, "unavailable", "restarting")
        if self.fail_next:
            self.fail_next -= 1
            return self._error(503, "unavailable", "restarting")
        if self.refuse_next:
            self.refuse_next -= 1
            return self._error(400, "invalid_argument", "refused")
        return None

    @staticmethod
    def _reply(message) -> web.Response:
        return web.Response(body=message.SerializeToString(), content_type="application/protobuf")

    async def handle_ingress(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body, refusal = await self._verified(request, "ingress_admin")
        if refusal is not None:
            return refusal
        if method == "CreateIngress":
            req = lk.CreateIngressRequest.FromString(body)
            self.calls.append((method, {"room": req.room_name, "identity": req.participant_identity,
                                        "input": lk.IngressInput.Name(req.input_type), "name": req.participant_name}))
            if (failure := await self._failure(method)) is not None:
                return failure
            self.created += 1
            iid = f"IN_{self.created}"
            whip = req.input_type == lk.IngressInput.WHIP_INPUT
            info = lk.IngressInfo(ingress_id=iid, name=req.name, input_type=req.input_type,
                                  room_name=req.room_name, participant_identity=req.participant_identity,
                                  participant_name=req.participant_name, stream_key=f"key-{iid}",
                                  url="http://lk.test/w" if whip else "rtmp://lk.test/x", reusable=True)
            self.ingresses[iid] = info
            return self._reply(info)
        if method == "DeleteIngress":
            req = lk.DeleteIngressRequest.FromString(body)
            self.calls.append((method, {"ingress_id": req.ingress_id}))
            if (failure := await self._failure(method)) is not None:
                return failure
            info = self.ingresses.pop(req.ingress_id, None)
            if info is None:
                return self._error(404, "not_found", "ingress not found")
            return self._reply(info)
        return self._error(404, "bad_route", method)

    async def handle_egress(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body, refusal = await self._verified(request, "room_record")
        if refusal is not None:
            return refusal
        if method == "StartRoomCompositeEgress":
            req = lk.RoomCompositeEgressRequest.FromString(body)
            outputs = [(lk.EncodedFileType.Name(f.file_type), f.filepath) for f in req.file_outputs]
            self.calls.append((method, {"room": req.room_name, "files": outputs}))
            if (failure := await self._failure(method)) is not None:
                return failure
            if req.room_name not in self.rooms:
                return self._error(404, "not_found", "requested room does not exist")
            self.created += 1
            info = lk.EgressInfo(egress_id=f"EG_{self.created}", room_name=req.room_name, room_composite=req,
                                 status=lk.EgressStatus.EGRESS_STARTING)
            self.egresses[info.egress_id] = info
            return self._reply(info)
        if method == "ListEgress":
            req = lk.ListEgressRequest.FromString(body)
            self.calls.append((method, {"room": req.room_name, "active": req.active}
                               | ({"egress_id": req.egress_id} if req.egress_id else {})))
            if (failure := await self._failure(method)) is not None:
                return failure
            active = (lk.EgressStatus.EGRESS_STARTING, lk.EgressStatus.EGRESS_ACTIVE)
            items = [e for e in self.egresses.values() if (not req.room_name or e.room_name == req.room_name)
                     and (not req.egress_id or e.egress_id == req.egress_id)
                     and (not req.active or e.status in active)]
            return self._reply(lk.ListEgressResponse(items=items))
        if method == "StopEgress":
            req = lk.StopEgressRequest.FromString(body)
            self.calls.append((method, {"egress_id": req.egress_id}))
            if (failure := await self._failure(method)) is not None:
                return failure
            info = self.egresses.get(req.egress_id)
            if info is None:
                return self._error(404, "not_found", "egress not found")
            info.status = lk.EgressStatus.EGRESS_ENDING
            return self._reply(info)
        return self._error(404, "bad_route", method)
