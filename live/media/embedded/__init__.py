"""The embedded media server (aiortc): WHIP ingest, WHEP playback, encode once and fan out."""
from live.media.embedded.server import MAX_SDP_BYTES, EmbeddedMedia

__all__ = ["MAX_SDP_BYTES", "EmbeddedMedia"]
