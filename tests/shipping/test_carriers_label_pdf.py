"""The sandbox label PDF: one 4 x 6 inch page, the tracking number as text, barcode and QR code, addresses and
order number, deterministic bytes, any text (long, non-Latin) without an error."""
from __future__ import annotations

import re
import uuid

from live.commerce.shipping.carriers.base import Address, Parcel
from live.commerce.shipping.carriers.label_pdf import render_label, render_shipment
from live.commerce.shipping.carriers.sandbox import SandboxCarrier

FROM = {"name": "Ada's Shop", "line1": "1 Market St", "city": "San Francisco", "state": "CA",
        "postal_code": "94105", "country": "US"}
TO = {"name": "Chinwe Okafor", "line1": "2 Broad St", "line2": "Flat 3", "city": "Lagos", "country": "NG"}
PARCEL = Parcel(1200, 30, 20, 10)


def _text(pdf: bytes) -> bytes:
    """The strings drawn on the page (uncompressed content streams: `(text) Tj`)."""
    return b"\n".join(re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", pdf))


async def test_label_pdf():
    label = SandboxCarrier._label(str(uuid.uuid4()))
    pdf = render_label(label, from_=Address.of(FROM), to=Address.of(TO), parcel=PARCEL, service="Sandbox Ground",
                       order_number="ORD-1042")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 1
    assert re.findall(rb"/MediaBox \[ 0 0 (\d+) (\d+) \]", pdf) == [(b"288", b"432")]   # 4 x 6 inches
    text = _text(pdf)
    for expected in (f"TRACKING # {label.tracking_number}".encode(), b"Chinwe Okafor", b"Flat 3", b"Lagos",
                     b"San Francisco, CA 94105", b"SANDBOX GROUND", b"1.20 kg", b"Order ORD-1042",
                     b"NOT VALID FOR POSTAGE"):
        assert expected in text, expected
    # Code 128 bars and QR modules are filled rectangles (over a hundred), and they follow the number
    bars = re.findall(rb"[-\d. ]+ re\b", pdf)
    assert len(bars) > 100
    other = render_label(SandboxCarrier._label(str(uuid.uuid4())), from_=Address.of(FROM), to=Address.of(TO),
                         parcel=PARCEL, service="Sandbox Ground", order_number="ORD-1042")
    assert re.findall(rb"[-\d. ]+ re\b", other) != bars
    assert pdf == render_label(label, from_=Address.of(FROM), to=Address.of(TO), parcel=PARCEL,
                               service="Sandbox Ground", order_number="ORD-1042")   # deterministic


def test_label_with_any_text():
    label = SandboxCarrier._label(str(uuid.uuid4()))
    to = Address.of({**TO, "name": "张伟 " + "W" * 300, "line1": "Straße 1"})
    pdf = render_label(label, from_=Address.of(FROM), to=to, parcel=PARCEL, service="x" * 200)
    text = _text(pdf)
    assert b"?? WWW" in text and b"..." in text   # outside Latin-1 shown as ?, too long cut
    assert b"Stra\\337e 1" in text or "Straße 1".encode("latin-1") in text
    assert b"Order" not in text


def test_render_shipment_from_a_row():
    sid = str(uuid.uuid4())
    label = SandboxCarrier._label(sid)
    pdf = render_shipment({"tracking_number": label.tracking_number, "carrier": "sandbox", "service": "express",
                           "from_address": FROM, "to_address": TO, "order_id": sid,
                           "parcel": {"weight_g": 300, "length_cm": 10, "width_cm": 10, "height_cm": 5}})
    text = _text(pdf)
    assert label.tracking_number.encode() in text and b"EXPRESS" in text and sid.encode() in text
