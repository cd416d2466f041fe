"""The composition root: the one place that builds the object graph of a worker (or of a CLI command), in
dependency order, each object given its collaborators in its constructor.

Registrations close the three cycles, once each, here: the room service is the broker's handler (it applies and
delivers the events the broker hands it) and the control channel's (pushes to users, row reloads), and the payment
providers take the order side that applies the sandbox's refund webhooks, received in process. The transport
(the Socket.IO gateway, made before the services because it is attached to the aiohttp app) is passed in as the
room layer's listener, the order pushes' sender and the sign-in changes' follower; a CLI command has none.
"""
from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from db import Database
from db import users as users_db
from live.auth.email_codes import EmailCodes
from live.auth.principal import ANONYMOUS, SYSTEM, Principal
from live.auth.seller_applications import SellerApplications
from live.auth.sessions import AuthStates, suspended_error
from live.auth.sockets import follow_sockets
from live.auth.tokens import TokenService, bearer
from live.auth.users import Users
from live.auth.wallet import WalletSignIn
from live.chat.room_chat import ChatService
from live.chat.writer import ChatWriter
from live.commerce.payments import PaymentProviders
from live.commerce.shop import Commerce
from live.config import Settings
from live.contact import ContactForm
from live.jobs import Jobs
from live.jobs.desk import JobsDesk
from live.media.embedded import EmbeddedMedia
from live.media.embedded.directory import MediaDirectory
from live.media.embedded.recorder import Recorder
from live.media.embedded.thumbs import Thumbnails
from live.media.livekit import LiveKitTokens
from live.media.livekit_egress import LiveKitEgress
from live.media.livekit_ingress import LiveKitIngress
from live.media.livekit_webhooks import LiveKitWebhooks
from live.media.replay import Replays
from live.notify import Notices
from live.notify.devmail import Mailbox
from live.notify.follows import Follows
from live.notify.mail import Mailer
from live.notify.schedule import Schedule
from live.notify.webpush import WebPush
from live.ratelimit import Limits, MemoryRateLimiter, RedisRateLimiter
from live.redis.link import RedisLink
from live.rooms.broker import MemoryBroker
from live.rooms.control import MemoryControl, RedisControl
from live.rooms.events import NOTIFICATION_NEW
from live.rooms.hub import Hub
from live.rooms.livestreams import Livestreams
from live.rooms.node import RoomService
from live.rooms.packets import encode_event
from live.rooms.presence import LocalPresence, RedisPresence
from live.rooms.redis_broker import RedisBroker
from live.rooms.state import StreamRegistry
from live.tasks import cancel_all, every
from live.uploads import SWEEP_CHECK_SECONDS, Uploads, UploadSweep

if TYPE_CHECKING:
    from live.rooms.gateway import Gateway

_EXTERNAL_CACHE_SECONDS = 60.0


class Services:
    def __init__(self, settings: Settings, db: Database, gateway: Gateway | None = None):
        self.settings = settings
        self.db = db
        self.tokens = TokenService(settings.jwt_secret, ttl=settings.jwt_ttl_seconds, issuer=settings.jwt_issuer,
                                   jwks_url=settings.jwt_jwks_url, external_issuer=settings.jwt_external_issuer,
                                   external_audience=settings.jwt_external_audience)
        self._external: dict[str, tuple[float, Principal]] = {}
        # live rooms: in-process broker, control, presence and limits; with REDIS_URL the Redis ones over one link
        self.hub = Hub(budget=settings.hub_budget, max_sweep=settings.hub_max_sweep_ms / 1000)
        self.media = LiveKitTokens(settings)
        self.livekit_webhooks = LiveKitWebhooks(db, settings, on_publishing=self._media_status)  # media:status too
        # the embedded media server (WHIP/WHEP, docs/media.md); `media:status` tells the room publishing began/ended
        # every publishing session recorded under the data directory (docs/media.md "Recordings and replay")
        self.recorder = Recorder(db, settings.data_dir, enabled=settings.recordings_enabled,
                                 max_seconds=settings.recording_max_seconds, max_bytes=settings.recording_max_bytes,
                                 min_free_bytes=settings.recording_min_free_bytes)
        self.replays = Replays(db, settings.data_dir)  # the recordings and product timelines of ended streams
        self.thumbnails = Thumbnails(settings.data_dir, interval=settings.thumbnail_interval)  # JPEGs while live
        self.embedded = EmbeddedMedia(max_sessions=settings.media_max_sessions, on_publishing=self._media_status,
                                      observers=(self.recorder, self.thumbnails), is_banned=self._media_banned)
        self.chat_writer = ChatWriter(db)
        self.redis = link = RedisLink(settings.redis_url) if settings.redis_url else None
        if link is not None:  # several workers: who publishes what, WHEP/DELETE forwarded to the publisher's worker
            self.embedded.directory = MediaDirectory(link, settings.jwt_secret, self.embedded.tag,
                                                     settings.media_forward_host)
        if link is None:
            self.broker, self.control, presence, self.limiter = (MemoryBroker(), MemoryControl(), LocalPresence(),
                                                                 MemoryRateLimiter())
        else:
            self.broker, self.control, presence, self.limiter = (RedisBroker(link), RedisControl(link),
                                                                 RedisPresence(link), RedisRateLimiter(link))
        # a stream's row changed by PATCH, status or slow mode: the other workers read it again
        streams = StreamRegistry(db, self.broker.follows, self.control.announce)
        self.rooms = RoomService(db, self.hub, presence, streams, self.media, self.broker, gateway,
                                 embedded=self.embedded)
        self.broker.register(self.rooms)
        self.control.register(self.rooms)
        self.limits = Limits(self.limiter, settings.rate_limits)  # REST and sign-in limits (RATE_LIMITS)
        self.email_codes = EmailCodes(db, settings.jwt_secret, self.limits)
        domain = (settings.public_url or f"{settings.host}:{settings.port}").split("://")[-1]
        self.wallet = WalletSignIn(db, domain, self.limits)
        # streams as records (REST), slow mode however set; a scheduled one's followers get a reminder this early
        self.livestreams = Livestreams(db, self.rooms, reminder_minutes=settings.stream_reminder_minutes)
        self.chat = ChatService(db, self.rooms, self.livestreams, self.chat_writer, self.limiter)
        self.payments = PaymentProviders(settings, db)  # Stripe / Paystack / sandbox, and the webhook inbox
        # durable background jobs (live/jobs): handlers are registered here and by the services below; this
        # process runs them unless it only serves (JOBS_IN_PROCESS=false; then `live worker` does, docs/jobs.md)
        self.jobs = Jobs(db.dsn, heartbeat_seconds=settings.jobs_heartbeat_seconds,
                         concurrency=settings.jobs_concurrency)
        self.outbox = Mailer(db, self.jobs, settings)  # the `email.send` jobs and the mail channel of `notify`
        self.push = WebPush(settings, db, self.jobs)  # Web Push: subscriptions, the push.send jobs
        # in-app notifications: `notify` (every domain event) records them; the notify.deliver job hands each event
        # to the channels (mail here; web push), then pushes notification:new to the users' sockets on every worker
        self.notices = Notices(db, functools.partial(gateway.send_to_users, NOTIFICATION_NEW) if gateway is not None
                               else self._push_many_elsewhere)
        self.notices.add_channel(self.outbox, email=True)
        self.notices.add_channel(self.push)
        self.notices.register_jobs(self.jobs)
        # follows: follow/unfollow and the sellers' profiles, the "live now" and reminder jobs (notify, under the
        # email cap), the streams' cover images (stored under the data directory, served at /uploads/)
        self.uploads = Uploads(settings.data_dir)
        # uploads no row names, older than a day, deleted by the hourly `uploads.sweep` job (docs/commerce.md)
        self.upload_sweep = UploadSweep(db, self.uploads)
        self.upload_sweep.register(self.jobs)
        self.follows = Follows(db, self.jobs, max_follows=settings.follow_max,
                               email_interval=settings.follow_email_interval_seconds, base_url=settings.base_url())
        self.schedule = Schedule(db, self.jobs, self.uploads, email_interval=settings.follow_email_interval_seconds,
                                 base_url=settings.base_url())
        self.jobs_desk = JobsDesk(db, self.jobs.kinds)  # the admins' view of the queue, and its /metrics gauges
        # catalog, cart, checkout, orders, coupons, analytics; stock changes reach the rooms as stock:update,
        # order changes the buyer's and seller's sockets as order:update
        self.commerce = Commerce(settings, db, self.rooms, self.payments, self.jobs, self.chat_writer.flush,
                                 gateway.send_to_user if gateway is not None else self._push_elsewhere,
                                 keep_pictures=self.uploads.keep)
        # the stored payment webhooks' jobs (webhook.process) apply them to the orders (self.commerce read at
        # each call)
        self.payments.register(self.jobs, lambda event: self.commerce.apply_payment_event(event))
        self.commerce.shipping.register_jobs(self.jobs)  # label purchase and void, tracking, the sandbox timeline
        self.media.rooms.register_jobs(self.jobs)  # LiveKit RoomService calls: banned viewers out, ended rooms gone
        self.livekit_ingress = LiveKitIngress(db, settings, self.media.rooms)  # OBS into LiveKit (REST)
        self.livekit_ingress.register_jobs(self.jobs)  # an ended stream's ingress deleted
        self.livekit_egress = LiveKitEgress(db, settings, self.media.rooms)  # LIVEKIT_EGRESS: streams recorded
        self.livekit_egress.register_jobs(self.jobs)
        # who may still use their tokens (sign-out, suspension, role changes), kept in memory on every worker;
        # a suspended or signed-out user's open sockets are cut
        self.auth = AuthStates(db, token_ttl=settings.jwt_ttl_seconds, refresh_seconds=settings.auth_refresh_seconds,
                               link=link, on_change=follow_sockets(gateway) if gateway is not None else None)
        self.users = Users(db, self.auth)  # sign-out, admin roles and suspension
        self.seller_applications = SellerApplications(db, self.auth)  # becoming a seller, decided by an admin
        # the contact form and the admins' desk for its messages (mails through the outbox)
        self.contact = ContactForm(db, self.limits, settings.support_address())
        # the development mailbox's messages (live/notify/devmail.py), read by /dev/mailbox; none in production
        self.devmail = (Mailbox(settings.data_dir / "mailbox", settings.mailbox_max_messages)
                        if settings.live_env != "production" else None)
        self._tasks: list = []

    def _push_elsewhere(self, user_id: str, event: str, data: dict) -> int:
        """A process with no sockets (`live worker`): a push to a user (order:update from a label or tracking job)
        goes to the serving workers over the control channel (REDIS_URL; with no Redis there is no other worker
        to reach). It reaches no socket here: 0."""
        self.control.push_user(user_id, encode_event(event, data))
        return 0

    def _push_many_elsewhere(self, pushes: list[tuple[str, dict]]) -> None:
        """`live worker`: notification:new to many users goes to the serving workers over the control channel."""
        self.control.push_users([(user_id, encode_event(NOTIFICATION_NEW, data)) for user_id, data in pushes])

    async def _media_status(self, stream_id: str, publishing: bool, size: tuple[int, int] | None = None) -> None:
        state = await self.rooms.streams.get(stream_id)
        data: dict = {"stream_id": stream_id, "publishing": publishing}
        if size is not None:  # the embedded server's publisher: its video's picture size, once known
            data["width"], data["height"] = size
        await self.rooms.publish(state, "media:status", data)

    async def _media_banned(self, stream_id: str, user_id: str) -> bool:
        """Whether a viewer is banned, by this worker's state of the room (followed while it publishes here)."""
        return user_id in (await self.rooms.streams.get(stream_id)).bans

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of an `Authorization` header (REST); ANONYMOUS without one; DomainError for a bad one, a
        revoked one, a suspended user's or an unknown user's."""
        token = bearer(authorization)
        if token is None:
            return ANONYMOUS
        principal = await self.principal_for_token(token)
        await self.auth.ensure_known(principal.user_id)
        return principal

    async def principal_for_token(self, token: str) -> Principal:
        """The caller of a token (sockets at connect, and REST): signature, expiry, revocation, suspension and
        the current role, without a database query (live/auth/sessions.py)."""
        if not self.tokens.accepts_external or self.tokens.is_ours(token):
            return self.auth.check(*self.tokens.decode(token))
        ident = await self.tokens.verify_external(token)
        cached = self._external.get(ident.user_id)
        if cached and cached[0] > time.monotonic():
            return self.auth.check(cached[1], ident.iat)
        async with self.db.tx(SYSTEM) as conn:
            row = await users_db.ensure_with_id(conn, ident.user_id, ident.email, ident.name)
        principal = Principal(row["id"], row["role"], row["name"])
        self._external[ident.user_id] = (time.monotonic() + _EXTERNAL_CACHE_SECONDS, principal)
        self.auth.remember(row["id"])
        return self.auth.check(principal, ident.iat)

    async def start(self) -> None:
        """Start background parts (called once the app is up)."""
        self._tasks = [asyncio.create_task(self.chat_writer.run(), name="chat-writer")]
        await self.auth.start()  # loads the users whose sign-in state changed; subscribes before Redis connects
        if self.redis is not None:
            await self.redis.start()  # waits a few seconds for Redis, then serves degraded if it is away
        self.rooms.start()
        self.recorder.start()  # rows left `recording` by a stopped worker are finished (docs/media.md)
        if self.embedded.directory is not None:
            await self.embedded.directory.start(self.embedded)
        await self.notices.start(self.settings.stock_low_threshold)  # the database's stock_low threshold
        self.commerce.start()  # reservation-expiry and unpaid-order sweepers
        # the next `uploads.sweep` queued when none is (one queued or running for every worker and machine)
        self._tasks.append(every(lambda: SWEEP_CHECK_SECONDS, self.upload_sweep.schedule, "uploads-sweep-scheduler"))
        if self.settings.jobs_in_process:
            await self.jobs.start()

    async def start_jobs_only(self) -> None:
        """`live worker`: the durable jobs, and Redis for what their handlers publish (no rooms, no sweepers)."""
        if self.redis is not None:
            await self.redis.start()
        await self.notices.start(self.settings.stock_low_threshold)
        await self.jobs.start()

    async def stop_jobs_only(self) -> None:
        await self.jobs.stop()
        await self.outbox.close()  # the worker's SMTP connection
        await self.payments.close()
        await self.push.close()
        await self.media.rooms.close()  # the one LiveKit client (rooms, ingress and egress calls)
        if self.redis is not None:
            await self.redis.stop()

    async def stop(self) -> None:
        """Stop background parts; pending chat is written before the pool closes."""
        await self.jobs.stop()
        await self.outbox.close()  # the worker's SMTP connection
        await self.commerce.stop()
        await self.rooms.stop()
        await cancel_all(self._tasks)
        await self.auth.stop()
        await self.chat_writer.flush()
        await self.payments.close()
        await self.push.close()
        await self.media.rooms.close()  # the one LiveKit client (rooms, ingress and egress calls)
        await self.embedded.close()
        await self.recorder.close()
        await self.thumbnails.close()
        if self.embedded.directory is not None:
            await self.embedded.directory.stop()
        if self.redis is not None:
            await self.redis.stop()

    def readiness_probes(self) -> dict:
        """Extra readiness checks besides the database: name -> async callable returning 'ok' or an error."""
        return {} if self.redis is None else {"redis": self.redis.probe}

    def token_for(self, user) -> str:
        """A token for a user row; a suspended user gets none (DomainError 'suspended', 403)."""
        if user.get("suspended_at") is not None:
            raise suspended_error()
        return self.tokens.issue(user["id"], user["role"], user["name"])
