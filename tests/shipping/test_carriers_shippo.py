"""The Shippo client against the fake Shippo server (real HTTP on 127.0.0.1): address validation, rates, label
purchase and the retry's lookup by rate, voids, tracking registration, error mapping (4xx fields, 5xx and
timeouts retryable), and the tracking webhook's token, HMAC and parsing. No database."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from live.commerce.shipping.carriers import Address, CarrierError, Parcel, WebhookRejected, carrier_for
from live.commerce.shipping.carriers.shippo import ShippoCarrier, error_fields
from live.commerce.shipping.carriers.shippo_webhook import sign
from live.config import load_settings
from tests.shipping.fake_shippo import API_KEY, FakeShippo, status_entry, track_body

TOKEN = "hook-token-0123456789abcdef"
HMAC_SECRET = "hmac-secret-0123456789abcdef"
SF = Address.of({"name": "Seller", "line1": "1 Market St", "city": "San Francisco", "state": "CA",
                 "postal_code": "94105", "country": "US"})
NYC = Address.of({"name": "Buyer", "line1": "3 Broadway", "city": "New York", "state": "NY",
                  "postal_code": "10001", "country": "US"})
LONDON = Address.of({"name": "Shop", "line1": "1 Oxford St", "city": "London", "postal_code": "W1D 1AN",
                     "country": "GB"})
BOX = Parcel(weight_g=1200, length_cm=30, width_cm=20, height_cm=10)


@pytest.fixture
async def fake():
    server = await FakeShippo().start()
    yield server
    await server.close()


@pytest.fixture
async def shippo(fake):
    carrier = ShippoCarrier(API_KEY, fake.url, webhook_token=TOKEN, hmac_secret=None, timeout=2.0)
    yield carrier
    await carrier.close()


async def test_rates(shippo, fake):
    rates = await shippo.rates(SF, NYC, BOX, "USD")
    assert [r.service for r in rates] == ["usps_ground_advantage", "usps_priority", "ups_next_day_air"]
    assert [r.amount_minor for r in rates] == [525 + 2 * 60, 810 + 2 * 95, 2940 + 2 * 210]   # 3 started 500 g
    assert [r.carrier for r in rates] == ["usps", "usps", "ups"]
    assert rates[1].service_name == "USPS Priority Mail" and rates[1].estimated_days == 2
    assert all(r.provider == "shippo" and r.provider_rate_id in fake.rates for r in rates)
    sent = [r for r in fake.requests if r["path"] == "/shipments/"][-1]
    assert sent["headers"]["Authorization"] == f"ShippoToken {API_KEY}"
    assert sent["params"]["async"] is False
    assert sent["params"]["address_to"] == {"name": "Buyer", "street1": "3 Broadway", "city": "New York",
                                            "state": "NY", "zip": "10001", "country": "US"}
    assert sent["params"]["parcels"] == [{"length": "30", "width": "20", "height": "10", "distance_unit": "cm",
                                          "weight": "1200", "mass_unit": "g"}]


async def test_rates_in_the_local_currency_or_none(shippo):
    gbp = await shippo.rates(LONDON, NYC, BOX, "GBP")      # the rate's currency_local
    assert [(r.currency, r.amount_minor) for r in gbp] == [("GBP", round((810 + 2 * 95) * 0.79))]
    with pytest.raises(CarrierError) as err:
        await shippo.rates(SF, NYC, BOX, "NGN")
    assert not err.value.retryable and "NGN" in err.value.message


async def test_buy_find_and_void(shippo, fake):
    rate = (await shippo.rates(SF, NYC, BOX, "USD"))[0]
    shipment = str(uuid.uuid4())
    assert await shippo.find_label(rate, shipment_id=shipment) is None
    label = await shippo.buy_label(rate, shipment_id=shipment, from_=SF, to=NYC, parcel=BOX)
    assert label.carrier == "usps" and label.tracking_number.startswith("9400") and label.label_url.endswith(".pdf")
    assert label.tracking_url and label.provider_ref in fake.transactions
    bought = fake.transactions[label.provider_ref]
    assert bought["metadata"] == f"shipment:{shipment}" and bought["rate"] == rate.provider_rate_id
    assert await shippo.find_label(rate, shipment_id=shipment) == label
    assert await shippo.find_label(rate, shipment_id=str(uuid.uuid4())) is None   # another shipment's metadata
    listed = [r for r in fake.requests if r["method"] == "GET"][-1]
    assert listed["params"] == {"rate": rate.provider_rate_id, "results": "25"}
    await shippo.void_label(label)
    assert [r["transaction"] for r in fake.refunds.values()] == [label.provider_ref]
    with pytest.raises(CarrierError) as err:           # a second refund: Shippo's 400
        await shippo.void_label(label)
    assert not err.value.retryable


async def test_lost_answer_then_lookup_finds_the_label(shippo, fake):
    """The purchase happened at Shippo but its answer never arrived: the retry's lookup finds it, no second
    label is bought."""
    rate = (await shippo.rates(SF, NYC, BOX, "USD"))[0]
    shipment = str(uuid.uuid4())
    fake.lose_next_purchase()
    with pytest.raises(CarrierError) as err:
        await shippo.buy_label(rate, shipment_id=shipment, from_=SF, to=NYC, parcel=BOX)
    assert err.value.retryable
    found = await shippo.find_label(rate, shipment_id=shipment)
    assert found is not None and fake.labels_per_metadata() == {f"shipment:{shipment}": 1}


async def test_queued_label_is_retried_not_bought_again(shippo, fake):
    rate = (await shippo.rates(SF, NYC, BOX, "USD"))[0]
    shipment = str(uuid.uuid4())
    fake.queue_next()
    with pytest.raises(CarrierError) as err:
        await shippo.buy_label(rate, shipment_id=shipment, from_=SF, to=NYC, parcel=BOX)
    assert err.value.retryable and "QUEUED" in err.value.message
    label = await shippo.find_label(rate, shipment_id=shipment)       # finished since
    assert label is not None and len(fake.labels(rate=rate.provider_rate_id)) == 1


async def test_lookup_pages_through_transactions_of_the_rate(shippo, fake):
    rate = (await shippo.rates(SF, NYC, BOX, "USD"))[0]
    first = str(uuid.uuid4())
    label = await shippo.buy_label(rate, shipment_id=first, from_=SF, to=NYC, parcel=BOX)
    for _ in range(30):   # newer transactions of the same rate push ours to the second page
        await shippo.buy_label(rate, shipment_id=str(uuid.uuid4()), from_=SF, to=NYC, parcel=BOX)
    assert await shippo.find_label(rate, shipment_id=first) == label
    assert [r["params"].get("page") for r in fake.requests if r["method"] == "GET"][-2:] == [None, "2"]


async def test_expired_rate_and_refused_void(shippo, fake):
    rate = (await shippo.rates(SF, NYC, BOX, "USD"))[0]
    fake.expired.add(rate.provider_rate_id)
    with pytest.raises(CarrierError) as err:
        await shippo.buy_label(rate, shipment_id=str(uuid.uuid4()), from_=SF, to=NYC, parcel=BOX)
    assert not err.value.retryable and "expired" in err.value.message
    fresh = (await shippo.rates(SF, NYC, BOX, "USD"))[1]
    label = await shippo.buy_label(fresh, shipment_id=str(uuid.uuid4()), from_=SF, to=NYC, parcel=BOX)
    fake.scanned.add(label.provider_ref)
    with pytest.raises(CarrierError) as err:
        await shippo.void_label(label)
    assert not err.value.retryable


async def test_errors_mapped(shippo, fake):
    fake.fail_next(1, 503)
    with pytest.raises(CarrierError) as err:
        await shippo.rates(SF, NYC, BOX, "USD")
    assert err.value.retryable
    fake.fail_next(1, 429)
    with pytest.raises(CarrierError) as err:
        await shippo.rates(SF, NYC, BOX, "USD")
    assert err.value.retryable
    fake.delay_next(1, 1.0)
    impatient = ShippoCarrier(API_KEY, fake.url, timeout=0.2)
    with pytest.raises(CarrierError) as err:
        await impatient.rates(SF, NYC, BOX, "USD")
    await impatient.close()
    assert err.value.retryable and "Timeout" in err.value.message
    no_zip = Address.of({**NYC.as_dict(), "postal_code": None})
    with pytest.raises(CarrierError) as err:
        await shippo.rates(SF, no_zip, BOX, "USD")
    assert not err.value.retryable
    assert err.value.fields == [{"field": "to.postal_code", "message": "This field is required."}]
    wrong_key = ShippoCarrier("shippo_test_wrong", fake.url)
    with pytest.raises(CarrierError) as err:
        await wrong_key.rates(SF, NYC, BOX, "USD")
    await wrong_key.close()
    assert not err.value.retryable and "Invalid token" in err.value.message
    unreachable = ShippoCarrier(API_KEY, "http://127.0.0.1:9", timeout=2.0)
    with pytest.raises(CarrierError) as err:
        await unreachable.rates(SF, NYC, BOX, "USD")
    await unreachable.close()
    assert err.value.retryable


async def test_big_answers_read_whole_and_bounded(shippo, fake):
    fake.pad_shipments = 1024 * 1024          # many chunks: read to the end
    assert len(await shippo.rates(SF, NYC, BOX, "USD")) == 3
    fake.pad_shipments = 3 * 1024 * 1024      # over the 2 MiB bound: refused, retryable
    with pytest.raises(CarrierError) as err:
        await shippo.rates(SF, NYC, BOX, "USD")
    assert err.value.retryable and "over 2097152 bytes" in err.value.message


def test_error_fields_shapes():
    assert error_fields({"address_from": {"street1": ["This field is required."]}, "detail": "x"}) == [
        {"field": "from.line1", "message": "This field is required."}, {"field": "shippo", "message": "x"}]
    assert error_fields({"messages": [{"code": "Invalid City/State/Zip", "text": "The ZIP Code is invalid."}]}) == [
        {"field": "postal_code", "message": "The ZIP Code is invalid."}]
    assert len(error_fields({"a": ["m"] * 100})) == 20


async def test_validate_address(shippo, fake):
    assert await shippo.validate_address(SF) == []
    assert await shippo.validate_address(Address.of({**SF.as_dict(), "line2": "Apt?"})) == []   # a warning only
    unknown = await shippo.validate_address(Address.of({**SF.as_dict(), "line1": "1 Nowhere Lane"}))
    assert [p["field"] for p in unknown] == ["line1"] and "could not be found" in unknown[0]["message"]
    bad_zip = await shippo.validate_address(Address.of({**SF.as_dict(), "postal_code": "00000"}))
    assert [p["field"] for p in bad_zip] == ["postal_code"]
    calls = len(fake.requests)
    local = await shippo.validate_address(Address.of({**SF.as_dict(), "state": None}))   # our rules first
    assert local == [{"field": "state", "message": "is required for United States"}]
    assert len(fake.requests) == calls
    sent = [r for r in fake.requests if r["path"] == "/addresses/"][0]["params"]
    assert sent["validate"] is True and sent["street1"] == "1 Market St" and sent["zip"] == "94105"


async def test_register_tracking(shippo, fake):
    await shippo.register_tracking("usps", "9400111", metadata="shipment:abc")
    assert fake.tracks == [{"carrier": "usps", "tracking_number": "9400111", "metadata": "shipment:abc"}]


def test_webhook_token_and_events(shippo):
    when = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    history = [status_entry("UNKNOWN", status_date=None), status_entry("PRE_TRANSIT", status_date=when),
               status_entry("TRANSIT", status_date=when + timedelta(hours=5))]
    history[0]["status_date"] = None
    body = track_body("9400123", "TRANSIT", substatus="out_for_delivery", status_date=when + timedelta(days=1),
                      metadata="shipment:s1", history=history, details="Out for delivery, expected by 8pm")
    events = shippo.parse_webhook(body, {}, {"token": TOKEN})
    assert [(e.status, e.status_date) for e in events] == [
        ("pre_transit", when), ("transit", when + timedelta(hours=5)),
        ("out_for_delivery", when + timedelta(days=1))]
    last = events[-1]
    assert (last.provider, last.carrier, last.tracking_number, last.metadata) == ("shippo", "usps", "9400123",
                                                                                   "shipment:s1")
    assert last.substatus == "out_for_delivery" and last.location == "Memphis, TN, US"
    assert last.message == "Out for delivery, expected by 8pm"
    for query in ({}, {"token": "wrong-token-0123456789"}, {"token": ""}):
        with pytest.raises(WebhookRejected) as err:
            shippo.parse_webhook(body, {}, query)
        assert err.value.code == "invalid_signature"
    unset = ShippoCarrier(API_KEY, "http://127.0.0.1:9")   # no token configured: refuse everything
    with pytest.raises(WebhookRejected):
        unset.parse_webhook(body, {}, {"token": ""})
    assert shippo.parse_webhook(track_body("1", "DELIVERED", event="transaction_created"), {}, {"token": TOKEN}) == []


@pytest.mark.parametrize("body", [
    b"nope", b"[]", orjson.dumps({"event": "track_updated"}), track_body("", "TRANSIT"),
    track_body("9400", "TELEPORTED"), track_body("9400", "TRANSIT", status_date="2026-01-01T00:00:00"),
    track_body("9400", "TRANSIT", status_date="soon"),
])
def test_webhook_payload_errors(shippo, body):
    with pytest.raises(WebhookRejected) as err:
        shippo.parse_webhook(body, {}, {"token": TOKEN})
    assert err.value.code == "invalid_payload"


def test_webhook_hmac(fake):
    carrier = ShippoCarrier(API_KEY, fake.url, webhook_token=TOKEN, hmac_secret=HMAC_SECRET)
    body = track_body("9400123", "DELIVERED")
    good = {"Shippo-Auth-Signature": sign(HMAC_SECRET, body)}
    assert [e.status for e in carrier.parse_webhook(body, good, {"token": TOKEN})] == ["delivered"]
    assert carrier.parse_webhook(body, {"shippo-auth-signature": good["Shippo-Auth-Signature"]}, {"token": TOKEN})
    bad = [{}, {"Shippo-Auth-Signature": sign("another-secret-0123456789", body)},
           {"Shippo-Auth-Signature": sign(HMAC_SECRET, body, int(time.time()) - 301)},
           {"Shippo-Auth-Signature": "t=now,v1=zz"}]
    for headers in bad:
        with pytest.raises(WebhookRejected) as err:
            carrier.parse_webhook(body, headers, {"token": TOKEN})
        assert err.value.code == "invalid_signature"
    tampered = body.replace(b"DELIVERED", b"RETURNED")
    with pytest.raises(WebhookRejected):
        carrier.parse_webhook(tampered, good, {"token": TOKEN})


async def test_carrier_for_picks_shippo(tmp_path, fake):
    settings = load_settings({"LIVE_DATA_DIR": str(tmp_path), "SHIPPO_API_KEY": API_KEY,
                              "SHIPPO_API_BASE": fake.url, "SHIPPO_WEBHOOK_TOKEN": TOKEN})
    carrier = carrier_for(settings)
    assert isinstance(carrier, ShippoCarrier) and carrier.name == "shippo"
    assert (await carrier.rates(SF, NYC, BOX, "USD"))[0].provider == "shippo"
    await carrier.close()


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=4), max_leaves=12)
_STATUS = st.fixed_dictionaries({}, optional={
    "status": st.sampled_from(["TRANSIT", "DELIVERED", "UNKNOWN", "transit"]) | _JSON,
    "substatus": st.fixed_dictionaries({"code": st.sampled_from(["out_for_delivery", "delayed"]) | _JSON}) | _JSON,
    "status_date": st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05", None]) | _JSON,
    "status_details": _JSON, "location": _JSON})
_DATA = st.fixed_dictionaries({}, optional={
    "tracking_number": st.text(max_size=70) | _JSON, "carrier": _JSON, "metadata": _JSON,
    "tracking_status": _STATUS | _JSON, "tracking_history": st.lists(_STATUS | _JSON, max_size=3) | _JSON})


@given(payload=st.fixed_dictionaries({"event": st.sampled_from(["track_updated", "other"]) | _JSON,
                                      "data": _DATA | _JSON}) | _JSON)
@examples(max_examples=150, deadline=None, derandomize=True, database=None)
def test_any_body_with_the_token_is_events_or_rejected(payload):
    """Whatever a body with the right token holds, parse_webhook answers events or WebhookRejected."""
    carrier = ShippoCarrier(API_KEY, "http://127.0.0.1:9", webhook_token=TOKEN)
    try:
        events = carrier.parse_webhook(orjson.dumps(payload), {}, {"token": TOKEN})
    except WebhookRejected as exc:
        assert exc.code == "invalid_payload"
    else:
        assert all(e.status_date.tzinfo is not None and e.provider == "shippo" for e in events)
