"""Address rules without a carrier: required fields, bounds, supported countries, postal codes per country,
states for US/CA/AU, one clear message per field; the sandbox carrier's validate_address is these rules."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from live.commerce.shipping.addresses import COUNTRIES, MAX_LENGTHS, check_address, normalize_postal
from live.commerce.shipping.carriers.base import Address
from live.commerce.shipping.carriers.sandbox import SandboxCarrier

BASE = {"name": "Ada Obi", "line1": "1 Main Street", "city": "Town"}

# country -> (valid postal codes, invalid ones, state when one is needed)
POSTAL = {
    "US": (["94105", "94105-1234"], ["9410", "941051", "ABCDE"], "CA"),
    "CA": (["K1A 0B1", "k1a0b1", "M5H 2N2"], ["K1A 0B", "D1A 0B1", "12345"], "ON"),
    "GB": (["SW1A 1AA", "sw1a1aa", "M1 1AE", "EC1A 1BB", "W1D 1AN", "B33 8TH"], ["SW1A", "12345", "QQ1 1AA"], None),
    "DE": (["10115", "01067"], ["1011", "101155", "AB123"], None),
    "FR": (["75001", "97400"], ["7500", "750011"], None),
    "NL": (["1012 AB", "1012AB"], ["0123 AB", "1012 A", "10123"], None),
    "ES": (["28001", "52006", "01001"], ["53001", "00123", "2800"], None),
    "IT": (["00184", "20121"], ["0018", "001844"], None),
    "AU": (["2000", "0800"], ["200", "20000"], "NSW"),
    "NG": (["100001", None], ["10001", "ABCDEF"], None),
    "KE": (["00100", None], ["0010"], None),
    "ZA": (["8001", "0002"], ["800", "80011"], None),
    "IN": (["110001", "110 001"], ["010001", "11001"], None),
    "JP": (["100-0001", "1000001"], ["100-001", "10-00001"], None),
    "BR": (["01310-100", "01310100"], ["01310-10", "1310-100"], None),
}


def addr(country: str, **kw) -> dict:
    return {**BASE, "country": country, **kw}


def test_a_good_address_has_no_problem():
    assert check_address(addr("US", state="NY", postal_code="10001", line2="Apt 4", phone="+1 (212) 555-0100",
                              email="ada@example.com")) == []


def test_required_fields_each_named():
    problems = check_address({"name": "  ", "line1": None, "country": ""})
    assert problems == [{"field": f, "message": "is required"} for f in ("name", "line1", "city", "country")]


def test_bounds_and_types():
    too_long = {f: "x" * (limit + 1) for f, limit in MAX_LENGTHS.items()}
    problems = check_address(too_long)
    assert {p["field"] for p in problems} == set(MAX_LENGTHS)
    assert {"field": "line1", "message": "must be at most 200 characters"} in problems
    assert check_address({**addr("GH"), "city": 12}) == [{"field": "city", "message": "must be text"}]
    assert check_address({**addr("DE", postal_code="10115"), "name": "Ada\x00"}) == [
        {"field": "name", "message": "must not contain control characters"}]


def test_unknown_country():
    [problem] = check_address(addr("ZZ"))
    assert problem["field"] == "country" and "'ZZ' is not a country we ship to" in problem["message"]
    assert check_address(addr("USA"))[0]["field"] == "country"
    assert check_address(addr("de", postal_code="10115")) == []   # case does not matter


@pytest.mark.parametrize("country", sorted(POSTAL))
def test_postal_codes_per_country(country):
    good, bad, state = POSTAL[country]
    extra = {"state": state} if state else {}
    for code in good:
        assert check_address(addr(country, postal_code=code, **extra)) == [], code
    for code in bad:
        problems = check_address(addr(country, postal_code=code, **extra))
        assert len(problems) == 1 and problems[0]["field"] == "postal_code", code
        assert f"{code!r} is not a postal code of {COUNTRIES[country].name}" in problems[0]["message"]
        assert "(like " in problems[0]["message"]


def test_postal_code_required_where_there_is_a_system():
    for country, state in (("US", "CA"), ("GB", None), ("DE", None), ("JP", None), ("IN", None)):
        problems = check_address(addr(country, **({"state": state} if state else {})))
        assert problems == [{"field": "postal_code", "message": f"is required for {COUNTRIES[country].name}"}]


def test_countries_without_postal_codes_accept_none_or_any():
    for country in ("GH", "AE", "HK"):
        assert COUNTRIES[country].postal is None
        assert check_address(addr(country)) == []
        assert check_address(addr(country, postal_code="GA-123-4567")) == []
    assert check_address(addr("GH", postal_code="x" * 21))[0]["message"] == "must be at most 20 characters"


def test_states():
    assert check_address(addr("US", postal_code="94105")) == [
        {"field": "state", "message": "is required for United States"}]
    [bad] = check_address(addr("US", postal_code="94105", state="XX"))
    assert bad["field"] == "state" and "'XX' is not a state or province code of United States" in bad["message"]
    assert check_address(addr("US", postal_code="94105", state="ny")) == []
    [bad] = check_address(addr("CA", postal_code="K1A 0B1", state="XX"))
    assert "one of AB, BC, MB" in bad["message"]
    assert check_address(addr("AU", postal_code="2000", state="VIC")) == []
    assert check_address(addr("AU", postal_code="2000")) == [{"field": "state", "message": "is required for Australia"}]
    assert check_address(addr("DE", postal_code="10115", state="Berlin")) == []   # free text elsewhere


def test_phone_and_email():
    problems = check_address(addr("NG", phone="call me", email="nope"))
    assert [p["field"] for p in problems] == ["phone", "email"]


def test_normalize_postal():
    assert normalize_postal("  sw1a   1aa ") == "SW1A 1AA"


async def test_sandbox_validate_address_is_these_rules():
    sandbox = SandboxCarrier(b"k")
    assert await sandbox.validate_address(Address.of(addr("US", postal_code="94105", state="CA"))) == []
    assert await sandbox.validate_address(Address.of(addr("US", postal_code="9410", state="CA"))) == [
        {"field": "postal_code", "message": "'9410' is not a postal code of United States (like 94105 or "
                                            "94105-1234)"}]


_VALUE = st.none() | st.integers() | st.text(max_size=40) | st.sampled_from(["US", "GB", "94105", "CA", "K1A 0B1"])


@given(d=st.dictionaries(st.sampled_from([*MAX_LENGTHS, "other"]), _VALUE | st.lists(_VALUE, max_size=2)))
@examples(max_examples=200, deadline=None, derandomize=True, database=None)
def test_any_dict_gets_messages_not_an_error(d):
    problems = check_address(d)
    assert all(set(p) == {"field", "message"} and p["field"] in MAX_LENGTHS and p["message"] for p in problems)
    assert len({p["field"] for p in problems}) == len(problems)   # one message per field
