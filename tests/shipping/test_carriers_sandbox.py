"""The sandbox carrier: zones, deterministic and ordered rates, rate ids that survive a restart, labels derived
from the shipment id, the tracking timeline, and its signed webhooks (good, forged, stale, tampered, malformed).
No database, no network."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from live.commerce.shipping.carriers import (
    Address,
    CarrierError,
    Label,
    Parcel,
    WebhookRejected,
    carrier_for,
    sandbox_for,
)
from live.commerce.shipping.carriers.sandbox import (
    SERVICES,
    SIGNATURE_HEADER,
    SandboxCarrier,
    billable_grams,
    price,
    signing_key,
    zone,
)
from live.config import load_settings

SECRET = "sandbox-carrier-secret-0123456789"
SF = Address.of({"name": "Seller", "line1": "1 Market St", "city": "San Francisco", "state": "CA",
                 "postal_code": "94105", "country": "US"})
LA = Address.of({"name": "Buyer", "line1": "2 Main St", "city": "Los Angeles", "state": "CA",
                 "postal_code": "90012", "country": "US"})
NYC = Address.of({"name": "Buyer", "line1": "3 Broadway", "city": "New York", "state": "NY",
                  "postal_code": "10001", "country": "US"})
TORONTO = Address.of({"name": "Buyer", "line1": "4 King St", "city": "Toronto", "state": "ON",
                      "postal_code": "M5H 2N2", "country": "CA"})
BERLIN = Address.of({"name": "Buyer", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117",
                     "country": "DE"})
PARIS = Address.of({"name": "Buyer", "line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001",
                    "country": "FR"})
ACCRA = Address.of({"name": "Buyer", "line1": "1 Oxford St", "city": "Accra", "country": "GH"})
KUMASI = Address.of({"name": "Buyer", "line1": "2 Adum Rd", "city": "Kumasi", "country": "GH"})
LAGOS = Address.of({"name": "Buyer", "line1": "1 Broad St", "city": "Lagos", "country": "NG"})
SMALL = Parcel(weight_g=400, length_cm=20, width_cm=15, height_cm=5)


@pytest.fixture
def carrier() -> SandboxCarrier:
    return SandboxCarrier(SECRET.encode(), pace_seconds=20)


def test_zone_table():
    assert zone(SF, SF) == 1                      # same country, same first postal digit
    assert zone(LA, SF) == 1                      # 9xxxx and 9xxxx
    assert zone(SF, NYC) == 2                     # same country
    assert zone(SF, TORONTO) == 3                 # North America
    assert zone(BERLIN, PARIS) == 3               # EU
    assert zone(ACCRA, LAGOS) == 3                # West Africa
    assert zone(SF, BERLIN) == 4 and zone(LAGOS, NYC) == 4
    assert zone(ACCRA, ACCRA) == 1                # no postal codes: same city
    assert zone(ACCRA, KUMASI) == 2


def test_postal_prefix():
    london_sw = Address.of({**SF.as_dict(), "country": "GB", "state": None, "postal_code": "SW1A 1AA"})
    london_se = Address.of({**london_sw.as_dict(), "postal_code": "SE1 9SG"})
    sheffield = Address.of({**london_sw.as_dict(), "postal_code": "S1 2HE"})
    assert zone(london_sw, sheffield) == 2 and zone(london_sw, london_se) == 2
    assert zone(london_sw, Address.of({**london_sw.as_dict(), "postal_code": "sw7 2az"})) == 1
    riga = Address.of({**SF.as_dict(), "country": "LV", "state": None, "postal_code": "LV-1050"})
    assert zone(riga, Address.of({**riga.as_dict(), "postal_code": "LV-5401"})) == 2
    assert zone(riga, Address.of({**riga.as_dict(), "postal_code": "1010"})) == 1


def test_billable_weight_is_the_larger_of_actual_and_volumetric():
    assert billable_grams(Parcel(400, 20, 15, 5)) == 400          # 1500 cm3 -> 300 g volumetric
    assert billable_grams(Parcel(400, 50, 40, 30)) == 12_000      # 60000 cm3 -> 12 kg volumetric


async def test_rates_deterministic_ordered_and_by_zone(carrier):
    domestic = await carrier.rates(SF, NYC, SMALL, "USD")
    assert [r.service for r in domestic] == ["ground", "express", "overnight"]
    assert [r.amount_minor for r in domestic] == [650, 1300, 2600]   # zone 2, first 500 g: base prices
    assert [r.estimated_days for r in domestic] == [4, 2, 1]
    assert domestic == await SandboxCarrier(b"another key").rates(SF, NYC, SMALL, "USD")
    abroad = await carrier.rates(SF, BERLIN, SMALL, "USD")
    assert [r.service for r in abroad] == ["ground", "express"]      # no overnight across borders
    assert [r.amount_minor for r in abroad] == [1900, 3800]
    assert all(r.provider == r.carrier == "sandbox" and r.expires_at is None for r in domestic + abroad)
    heavy = await carrier.rates(SF, NYC, Parcel(1800, 20, 15, 5), "USD")   # 4 started 500 g steps: 3 past base
    assert heavy[0].amount_minor == 650 + 3 * 90
    assert [r.amount_minor for r in heavy] == sorted(r.amount_minor for r in heavy)


async def test_rates_in_the_currency_minor_units(carrier):
    ngn = await carrier.rates(LAGOS, LAGOS, SMALL, "NGN")        # zone 1 ground: 4.50 USD x 1500
    assert ngn[0].currency == "NGN" and ngn[0].amount_minor == 675_000
    jpy = await carrier.rates(SF, NYC, SMALL, "JPY")             # 0-digit currency: 6.50 x 150 yen
    assert jpy[0].amount_minor == 975
    other = await carrier.rates(SF, NYC, SMALL, "XYZ")           # unlisted: 1:1 with the dollar
    assert other[0].amount_minor == 650 and other[0].currency == "XYZ"


async def test_parcel_and_currency_out_of_bounds(carrier):
    with pytest.raises(CarrierError) as err:
        await carrier.rates(SF, NYC, Parcel(70_001, 200, 15, 0), "usd")
    assert not err.value.retryable
    assert {f["field"] for f in err.value.fields} == {"weight_g", "length_cm", "height_cm", "currency"}


async def test_rate_id_survives_a_restart_and_labels_follow_the_shipment(carrier):
    rate = (await carrier.rates(SF, BERLIN, Parcel(2600, 30, 20, 10), "EUR"))[1]
    assert SandboxCarrier.rate_of(rate.provider_rate_id) == rate
    shipment = str(uuid.uuid4())
    label = await carrier.buy_label(rate, shipment_id=shipment, from_=SF, to=BERLIN, parcel=SMALL)
    restarted = SandboxCarrier(b"other")
    assert await restarted.buy_label(rate, shipment_id=shipment, from_=SF, to=BERLIN, parcel=SMALL) == label
    assert await restarted.find_label(rate, shipment_id=shipment) == label
    assert label.tracking_number.startswith("SBX") and len(label.tracking_number) == 19
    assert label.tracking_number[3:].isdigit() and label.label_url is None
    other = await carrier.buy_label(rate, shipment_id=str(uuid.uuid4()), from_=SF, to=BERLIN, parcel=SMALL)
    assert other.tracking_number != label.tracking_number
    await carrier.void_label(label)


async def test_labels_refused(carrier):
    rate = (await carrier.rates(SF, NYC, SMALL, "USD"))[0]
    for bad in ("sbx_rate:ground:z9:400g:USD", "shippo-rate-123", "sbx_rate:overnight:z4:400g:USD"):
        with pytest.raises(CarrierError) as err:
            await carrier.buy_label(rate.__class__(**{**rate.as_dict(), "provider_rate_id": bad, "expires_at": None}),
                                    shipment_id=str(uuid.uuid4()), from_=SF, to=NYC, parcel=SMALL)
        assert not err.value.retryable
    with pytest.raises(CarrierError):
        await carrier.buy_label(rate, shipment_id="not-a-uuid", from_=SF, to=NYC, parcel=SMALL)
    with pytest.raises(CarrierError) as err:
        await carrier.void_label(Label("shippo_tx_1", "usps", "9400100000000000000000", "https://x", None))
    assert not err.value.retryable


async def test_timeline(carrier):
    shipment = str(uuid.uuid4())
    label = await carrier.find_label(None, shipment_id=shipment)
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    events = carrier.timeline(label, start, from_=SF, to=BERLIN)
    assert [(e.status, e.substatus) for e in events] == [
        ("pre_transit", "information_received"), ("transit", "package_accepted"), ("transit", "package_departed"),
        ("out_for_delivery", "out_for_delivery"), ("delivered", "delivered")]
    assert [e.status_date for e in events] == [start + timedelta(seconds=20 * i) for i in range(5)]
    assert {e.metadata for e in events} == {f"shipment:{shipment}"}
    assert events[0].location == "San Francisco, CA, US" and events[-1].location == "Berlin, DE"
    assert all(e.tracking_number == label.tracking_number for e in events)
    fast = carrier.timeline(label, start, 0.5)
    assert fast[-1].status_date - fast[0].status_date == timedelta(seconds=2)
    with pytest.raises(ValueError):
        carrier.timeline(label, datetime(2026, 1, 2))


async def test_webhook_signing(carrier):
    label = await carrier.find_label(None, shipment_id=str(uuid.uuid4()))
    event = carrier.timeline(label, datetime.now(timezone.utc))[3]
    body = carrier.event_body(event)
    headers = carrier.sign(body)
    assert carrier.parse_webhook(body, headers, {}) == [event]
    # header names are case-insensitive, also in a plain dict
    assert carrier.parse_webhook(body, {SIGNATURE_HEADER.lower(): headers[SIGNATURE_HEADER]}, {}) == [event]

    def rejected(body: bytes, headers: dict) -> str:
        with pytest.raises(WebhookRejected) as err:
            carrier.parse_webhook(body, headers, {})
        return err.value.code

    assert rejected(body, {}) == "invalid_signature"
    assert rejected(body, SandboxCarrier(b"forger's key").sign(body)) == "invalid_signature"
    assert rejected(body, carrier.sign(body, int(time.time()) - 301)) == "invalid_signature"
    assert carrier.parse_webhook(body, carrier.sign(body, int(time.time()) - 290), {}) == [event]
    tampered = body.replace(b'"out_for_delivery"', b'"delivered"', 1)
    assert tampered != body and rejected(tampered, headers) == "invalid_signature"
    assert rejected(body, {SIGNATURE_HEADER: "t=abc,v1=00"}) == "invalid_signature"


@pytest.mark.parametrize("change", [
    {"status": "teleported"}, {"status": "TRANSIT"}, {"carrier": "usps"}, {"tracking_number": ""},
    {"tracking_number": "x" * 65}, {"status_date": "2026-01-02T03:04:05"}, {"status_date": "yesterday"},
    {"status_date": None}, {"message": 5}, {"location": "x" * 201},
])
def test_webhook_payload_is_strict(carrier, change):
    payload = {"tracking_number": "SBX0000000000000001", "carrier": "sandbox", "status": "transit",
               "substatus": None, "status_date": "2026-01-02T03:04:05+00:00", "message": None, "location": None,
               "metadata": None}
    body = orjson.dumps({**payload, **change})
    with pytest.raises(WebhookRejected) as err:
        carrier.parse_webhook(body, carrier.sign(body), {})
    assert err.value.code == "invalid_payload"


def test_webhook_body_not_json_or_too_big(carrier):
    for body in (b"not json", b"[1,2]", b"{" + b" " * 20_000 + b"}"):
        with pytest.raises(WebhookRejected) as err:
            carrier.parse_webhook(body, carrier.sign(body), {})
        assert err.value.code == "invalid_payload"


def test_carrier_for_settings_and_signing_key(tmp_path):
    settings = load_settings({"LIVE_DATA_DIR": str(tmp_path), "SANDBOX_CARRIER_PACE_SECONDS": "0.5"})
    chosen = carrier_for(settings)
    assert isinstance(chosen, SandboxCarrier) and chosen.name == "sandbox" and chosen.pace_seconds == 0.5
    body = b'{"x":1}'
    # unset secret: derived from JWT_SECRET, the same for every process of the deployment
    assert sandbox_for(settings).sign(body, 1)[SIGNATURE_HEADER] == chosen.sign(body, 1)[SIGNATURE_HEADER]
    assert signing_key(None, settings.jwt_secret) != signing_key(None, "x" * 32)
    assert signing_key(SECRET, settings.jwt_secret) == SECRET.encode()


def test_price_table_is_complete():
    for service, (_, zones) in SERVICES.items():
        for z in zones:
            assert price(service, z, 500, "USD") == zones[z][0]
            assert price(service, z, 501, "USD") == zones[z][0] + zones[z][1]


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=4), max_leaves=12)
_FIELDS = st.fixed_dictionaries({}, optional={
    "tracking_number": st.text(max_size=70) | _JSON, "carrier": st.sampled_from(["sandbox", "usps"]) | _JSON,
    "status": st.sampled_from(["transit", "delivered", "Transit", ""]) | _JSON,
    "status_date": st.sampled_from(["2026-01-02T03:04:05+00:00", "2026-01-02", "2026-13-40T99:99:99Z"]) | _JSON,
    "substatus": _JSON, "message": _JSON, "location": _JSON, "metadata": _JSON})


@given(payload=_FIELDS | _JSON)
@examples(max_examples=150, deadline=None, derandomize=True, database=None)
def test_any_signed_body_is_events_or_rejected(payload):
    """Whatever a signed body holds, parse_webhook answers events or WebhookRejected, nothing else."""
    carrier = SandboxCarrier(SECRET.encode())
    body = orjson.dumps(payload)
    try:
        events = carrier.parse_webhook(body, carrier.sign(body), {})
    except WebhookRejected as exc:
        assert exc.code == "invalid_payload"
    else:
        assert len(events) == 1 and events[0].status_date.tzinfo is not None
