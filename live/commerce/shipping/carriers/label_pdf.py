"""The sandbox carrier's shipping label as a real PDF: one 4 x 6 inch page (the thermal-printer size) with the
sender and the recipient, the service and billable weight, the tracking number as a Code 128 barcode and as a QR
code (reportlab.graphics.barcode), the order number, and a "sandbox: not valid for postage" line.

Deterministic (reportlab's invariant mode: no timestamps or random ids), so the same shipment gives the same
bytes. Text is drawn in the standard Helvetica fonts (Latin-1); characters outside it are shown as "?", and a
line too long for the label is cut with "...".
"""
from __future__ import annotations

from io import BytesIO
from typing import Mapping

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.code128 import Code128
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from live.commerce.shipping.carriers.base import Address, Label, Parcel

WIDTH, HEIGHT = 4 * inch, 6 * inch
MARGIN = 0.15 * inch
QR_SIZE = 1.1 * inch


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def _fit(text: str, font: str, size: float, width: float) -> str:
    """`text` (Latin-1) cut with "..." to fit `width` points."""
    text = _latin1(" ".join(text.split()))
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."


def _lines(addr: Address) -> list[str]:
    city = " ".join(p for p in (addr.city + ("," if addr.state or addr.postal_code else ""), addr.state,
                                addr.postal_code) if p)
    return [addr.name, addr.line1, *([addr.line2] if addr.line2 else []), city, addr.country]


def _block(c: Canvas, x: float, y: float, title: str, lines: list[str], size: float, width: float) -> float:
    """Draws a titled address block from `y` down; returns the y below it."""
    c.setFont("Helvetica-Bold", 7)
    c.drawString(x, y, title)
    y -= size + 3
    for i, line in enumerate(lines):
        font = "Helvetica-Bold" if i == 0 else "Helvetica"
        c.setFont(font, size)
        c.drawString(x, y, _fit(line, font, size, width))
        y -= size + 2
    return y


def render_label(label: Label, *, from_: Address, to: Address, parcel: Parcel, service: str,
                 order_number: str | None = None, billable_g: int | None = None) -> bytes:
    """The label of a shipment as PDF bytes (one 4 x 6 inch page)."""
    buf = BytesIO()
    c = Canvas(buf, pagesize=(WIDTH, HEIGHT), invariant=1, pageCompression=0)
    c.setTitle(_latin1(f"Shipping label {label.tracking_number}"))
    c.setAuthor("live sandbox carrier")
    inner = WIDTH - 2 * MARGIN
    top = HEIGHT - MARGIN

    # sender (small) and the service banner
    y = _block(c, MARGIN, top - 8, "FROM", _lines(from_), 7.5, inner - QR_SIZE - 6)
    qr = QrCodeWidget(label.tracking_number)
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, c, WIDTH - MARGIN - QR_SIZE, top - QR_SIZE)
    y = min(y, top - QR_SIZE) - 6
    c.setLineWidth(1.5)
    c.line(MARGIN, y, WIDTH - MARGIN, y)
    y -= 24
    weight = billable_g if billable_g is not None else parcel.weight_g
    kg = f"{weight / 1000:.2f} kg"
    c.setFont("Helvetica-Bold", 14)
    c.drawRightString(WIDTH - MARGIN, y, kg)
    room = inner - stringWidth(kg, "Helvetica-Bold", 14) - 10
    banner = _latin1((service or label.carrier).upper())
    size = next((s for s in (18, 16, 14, 12) if stringWidth(banner, "Helvetica-Bold", s) <= room), 12)
    c.setFont("Helvetica-Bold", size)
    c.drawString(MARGIN, y, _fit(banner, "Helvetica-Bold", size, room))
    c.setFont("Helvetica", 7)
    c.drawString(MARGIN, y - 11, _fit(f"{label.carrier} - {parcel.length_cm:g} x {parcel.width_cm:g} x "
                                      f"{parcel.height_cm:g} cm", "Helvetica", 7, inner))
    y -= 18
    c.line(MARGIN, y, WIDTH - MARGIN, y)

    # recipient (large)
    y = _block(c, MARGIN + 6, y - 14, "SHIP TO", _lines(to), 12, inner - 12)
    y -= 4
    c.line(MARGIN, y, WIDTH - MARGIN, y)

    # the tracking barcode and its number
    barcode = Code128(label.tracking_number, barHeight=0.9 * inch, barWidth=1.0, quiet=False)
    scale = min(1.0, inner / barcode.width)
    c.saveState()
    c.translate(MARGIN + (inner - barcode.width * scale) / 2, y - 0.9 * inch - 10)
    c.scale(scale, 1)
    barcode.drawOn(c, 0, 0)
    c.restoreState()
    c.setFont("Helvetica-Bold", 11)
    c.drawCentredString(WIDTH / 2, y - 0.9 * inch - 24, _latin1(f"TRACKING # {label.tracking_number}"))

    # order number and the sandbox notice at the bottom
    c.setFont("Helvetica", 8)
    if order_number:
        c.drawString(MARGIN, MARGIN + 12, _fit(f"Order {order_number}", "Helvetica", 8, inner))
    c.setFont("Helvetica-Oblique", 7)
    c.drawString(MARGIN, MARGIN, "SANDBOX CARRIER - NOT VALID FOR POSTAGE")
    c.showPage()
    c.save()
    return buf.getvalue()


def render_shipment(shipment: Mapping) -> bytes:
    """render_label from a shipment row or dict: tracking_number, carrier, provider_ref, service, from_address,
    to_address, parcel (weight_g, length_cm, width_cm, height_cm) and order_number or order_id."""
    parcel = shipment["parcel"]
    label = Label(provider_ref=shipment.get("provider_ref") or "", carrier=shipment.get("carrier") or "sandbox",
                  tracking_number=shipment["tracking_number"], label_url=None, tracking_url=None)
    return render_label(label, from_=Address.of(shipment["from_address"]), to=Address.of(shipment["to_address"]),
                        parcel=Parcel(int(parcel["weight_g"]), float(parcel["length_cm"]), float(parcel["width_cm"]),
                                      float(parcel["height_cm"])),
                        service=shipment.get("service_name") or shipment.get("service") or "",
                        order_number=shipment.get("order_number") or shipment.get("order_id"))
