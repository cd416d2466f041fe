"""Address rules that need no carrier: required fields, bounded lengths, the countries we ship to (ISO 3166-1
alpha-2), each with its postal-code pattern (or none), and the state/province codes of US, CA and AU.

`check_address(d)` returns one {field, message} per problem ([] when the address is fine); the sandbox carrier's
`validate_address` is this, and Shippo's adds its own verdict. `COUNTRIES` is the table docs/shipping.md prints.
`verified(carrier, d)` is the one address check of saved addresses, checkout's inline address and a seller's
ship-from: these rules, then the carrier's validation, as a 422 with one {field, message} per problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from live.commerce.shipping.carriers.base import Address, Carrier, CarrierError
from live.errors import DomainError


@dataclass(frozen=True, slots=True)
class Country:
    name: str
    region: str                 # the sandbox carrier's zone 3 ("same region"): EU, EUR, NA, LATAM, WAF, EAF, ...
    postal: str | None          # the pattern a postal code must match (after normalize_postal); None: no system
    postal_required: bool       # False: may be left out (when given, it must still match `postal`)
    example: str | None = None  # shown in the message of a code that does not match


_D5 = r"\d{5}"
_D4 = r"\d{4}"
_GB = r"GIR ?0AA|[A-PR-UWYZ](\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRV-Y]) ?\d[ABD-HJLNP-UW-Z]{2}"
_CA = r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d"

COUNTRIES: dict[str, Country] = {
    # North America
    "US": Country("United States", "NA", r"\d{5}(-\d{4})?", True, "94105 or 94105-1234"),
    "CA": Country("Canada", "NA", _CA, True, "K1A 0B1"),
    "MX": Country("Mexico", "NA", _D5, True, "06600"),
    # European Union
    "AT": Country("Austria", "EU", _D4, True, "1010"),
    "BE": Country("Belgium", "EU", _D4, True, "1000"),
    "BG": Country("Bulgaria", "EU", _D4, True, "1000"),
    "HR": Country("Croatia", "EU", _D5, True, "10000"),
    "CY": Country("Cyprus", "EU", _D4, True, "1010"),
    "CZ": Country("Czechia", "EU", r"\d{3} ?\d{2}", True, "110 00"),
    "DK": Country("Denmark", "EU", _D4, True, "1050"),
    "EE": Country("Estonia", "EU", _D5, True, "10111"),
    "FI": Country("Finland", "EU", _D5, True, "00100"),
    "FR": Country("France", "EU", _D5, True, "75001"),
    "DE": Country("Germany", "EU", _D5, True, "10115"),
    "GR": Country("Greece", "EU", r"\d{3} ?\d{2}", True, "105 57"),
    "HU": Country("Hungary", "EU", _D4, True, "1051"),
    "IE": Country("Ireland", "EU", r"([AC-FHKNPRTV-Y]\d{2}|D6W)( ?[0-9AC-FHKNPRTV-Y]{4})?", False, "D02 X285"),
    "IT": Country("Italy", "EU", _D5, True, "00184"),
    "LV": Country("Latvia", "EU", r"(LV-)?\d{4}", True, "LV-1050"),
    "LT": Country("Lithuania", "EU", r"(LT-)?\d{5}", True, "LT-01100"),
    "LU": Country("Luxembourg", "EU", r"(L-)?\d{4}", True, "1111"),
    "MT": Country("Malta", "EU", r"[A-Z]{3} ?\d{4}", True, "VLT 1117"),
    "NL": Country("Netherlands", "EU", r"[1-9]\d{3} ?[A-Z]{2}", True, "1012 AB"),
    "PL": Country("Poland", "EU", r"\d{2}-\d{3}", True, "00-950"),
    "PT": Country("Portugal", "EU", r"\d{4}-\d{3}", True, "1000-001"),
    "RO": Country("Romania", "EU", r"\d{6}", True, "010011"),
    "SK": Country("Slovakia", "EU", r"\d{3} ?\d{2}", True, "811 01"),
    "SI": Country("Slovenia", "EU", _D4, True, "1000"),
    "ES": Country("Spain", "EU", r"(0[1-9]|[1-4]\d|5[0-2])\d{3}", True, "28001"),
    "SE": Country("Sweden", "EU", r"\d{3} ?\d{2}", True, "111 22"),
    # rest of Europe
    "GB": Country("United Kingdom", "EUR", _GB, True, "SW1A 1AA"),
    "CH": Country("Switzerland", "EUR", _D4, True, "8001"),
    "NO": Country("Norway", "EUR", _D4, True, "0150"),
    "IS": Country("Iceland", "EUR", r"\d{3}", True, "101"),
    # Latin America
    "BR": Country("Brazil", "LATAM", r"\d{5}-?\d{3}", True, "01310-100"),
    "AR": Country("Argentina", "LATAM", r"([A-Z]\d{4}[A-Z]{3}|\d{4})", True, "C1425DKA or 1425"),
    "CL": Country("Chile", "LATAM", r"\d{7}", True, "8320000"),
    "CO": Country("Colombia", "LATAM", r"\d{6}", False, "110111"),
    # West Africa
    "NG": Country("Nigeria", "WAF", r"\d{6}", False, "100001"),
    "GH": Country("Ghana", "WAF", None, False),
    "CI": Country("Côte d'Ivoire", "WAF", None, False),
    "SN": Country("Senegal", "WAF", _D5, False, "10200"),
    # East Africa
    "KE": Country("Kenya", "EAF", _D5, False, "00100"),
    "UG": Country("Uganda", "EAF", None, False),
    "TZ": Country("Tanzania", "EAF", _D5, False, "11101"),
    "RW": Country("Rwanda", "EAF", None, False),
    "ET": Country("Ethiopia", "EAF", _D4, False, "1000"),
    # Southern and North Africa, Middle East
    "ZA": Country("South Africa", "SAF", _D4, True, "8001"),
    "EG": Country("Egypt", "MENA", _D5, False, "11511"),
    "MA": Country("Morocco", "MENA", _D5, True, "10000"),
    "AE": Country("United Arab Emirates", "MENA", None, False),
    "SA": Country("Saudi Arabia", "MENA", r"\d{5}(-\d{4})?", True, "11564"),
    "IL": Country("Israel", "MENA", r"\d{7}", True, "6100000"),
    # Asia
    "IN": Country("India", "SAS", r"[1-9]\d{2} ?\d{3}", True, "110001"),
    "PK": Country("Pakistan", "SAS", _D5, False, "44000"),
    "JP": Country("Japan", "EAS", r"\d{3}-?\d{4}", True, "100-0001"),
    "KR": Country("South Korea", "EAS", _D5, True, "03187"),
    "CN": Country("China", "EAS", r"\d{6}", True, "100000"),
    "HK": Country("Hong Kong", "EAS", None, False),
    "SG": Country("Singapore", "SEA", r"\d{6}", True, "018956"),
    "MY": Country("Malaysia", "SEA", _D5, True, "50000"),
    "PH": Country("Philippines", "SEA", _D4, True, "1000"),
    "ID": Country("Indonesia", "SEA", _D5, True, "10110"),
    # Oceania
    "AU": Country("Australia", "OCE", _D4, True, "2000"),
    "NZ": Country("New Zealand", "OCE", _D4, True, "6011"),
}

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI UM AA AE AP".split())
CA_PROVINCES = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split())
AU_STATES = frozenset("ACT NSW NT QLD SA TAS VIC WA".split())
STATES: dict[str, frozenset[str]] = {"US": US_STATES, "CA": CA_PROVINCES, "AU": AU_STATES}

# the longest text each field may hold (the same bounds as the checkout's address model)
MAX_LENGTHS = {"name": 200, "line1": 200, "line2": 200, "city": 100, "state": 100, "postal_code": 20,
               "country": 2, "phone": 40, "email": 320}
REQUIRED = ("name", "line1", "city", "country")
_PHONE = re.compile(r"\+?[0-9 ().-]{4,40}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COMPILED = {code: re.compile(c.postal) for code, c in COUNTRIES.items() if c.postal}


def normalize_postal(code: str) -> str:
    """Capitals, spaces collapsed to one, trimmed: the form the patterns expect."""
    return " ".join(code.upper().split())


def _problem(field: str, message: str) -> dict:
    return {"field": field, "message": message}


def check_address(d: Mapping) -> list[dict]:
    """One {field, message} per problem of address `d` (keys as in Address: name, line1, line2, city, state,
    postal_code, country, phone, email; other keys are not looked at); [] when it is fine."""
    problems: list[dict] = []
    text: dict[str, str] = {}
    for field, limit in MAX_LENGTHS.items():
        value = d.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(_problem(field, "must be text"))
            continue
        value = value.strip()
        if len(value) > limit:
            problems.append(_problem(field, f"must be at most {limit} characters"))
        elif value:
            if not value.isprintable():
                problems.append(_problem(field, "must not contain control characters"))
            else:
                text[field] = value
    seen = {p["field"] for p in problems}
    for field in REQUIRED:
        if field not in text and field not in seen:
            problems.append(_problem(field, "is required"))
    country = None
    if "country" in text:
        code = text["country"].upper()
        country = COUNTRIES.get(code)
        if country is None:
            problems.append(_problem("country", f"{text['country']!r} is not a country we ship to (ISO 3166-1 "
                                     "alpha-2 code such as US, GB, NG; docs/shipping.md lists them)"))
        else:  # a postal code or state refused above (not text, too long) gets no second message
            if "postal_code" not in seen:
                problems.extend(_postal(code, country, text.get("postal_code")))
            if "state" not in seen:
                problems.extend(_state(code, text.get("state")))
    if "phone" in text and not _PHONE.fullmatch(text["phone"]):
        problems.append(_problem("phone", "must be a phone number: digits, spaces, +, -, ( ) and ."))
    if "email" in text and not _EMAIL.fullmatch(text["email"]):
        problems.append(_problem("email", "must be an email address like name@example.com"))
    return problems


def _postal(code: str, country: Country, postal: str | None) -> list[dict]:
    if postal is None:
        if country.postal_required:
            return [_problem("postal_code", f"is required for {country.name}")]
        return []
    if country.postal is None:
        return []  # no postal-code system: anything (bounded) is kept as written
    if not _COMPILED[code].fullmatch(normalize_postal(postal)):
        example = f" (like {country.example})" if country.example else ""
        return [_problem("postal_code", f"{postal!r} is not a postal code of {country.name}{example}")]
    return []


def _state(code: str, state: str | None) -> list[dict]:
    valid = STATES.get(code)
    if valid is None:
        return []
    name = COUNTRIES[code].name
    if state is None:
        return [_problem("state", f"is required for {name}")]
    if state.upper() not in valid:
        codes = "two letters like CA, NY, TX" if code == "US" else "one of " + ", ".join(sorted(valid))
        return [_problem("state", f"{state!r} is not a state or province code of {name} ({codes})")]
    return []


def postal_prefix(country: str, postal: str | None) -> str | None:
    """The sandbox carrier's zone-1 key within a country: of the normalized postal code (a leading "LV-" style
    country prefix dropped), its leading letters when it starts with a letter (GB SW / S / EC, CA K, AR C), else
    its first digit (US 9, DE 1, NL 1); None without a code."""
    if not postal:
        return None
    code = normalize_postal(postal)
    code = code.removeprefix(f"{country.upper()}-")
    if code[:1].isalpha():
        letters = len(code) - len(code.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        return code[:letters]
    return code[:1] or None


async def verified(carrier: Carrier, fields: dict, prefix: str = "") -> None:
    """Refuse an address that fails the rules or the carrier's validation: 422 `validation_failed` with one
    {field, message} per problem (`prefix` names where it sits in the body, e.g. "address."). Runs outside any
    transaction (the carrier may be a remote call). A carrier that cannot be reached is 502 `carrier_error`."""
    problems = check_address(fields)
    if not problems:
        try:
            problems = await carrier.validate_address(Address.of(fields))
        except CarrierError as exc:
            if not exc.fields:
                raise DomainError("carrier_error", f"the carrier could not check the address: {exc.message}") \
                    from None
            problems = exc.fields
    if problems:
        raise DomainError("validation_failed", "the address is not valid",
                          details=[{"field": prefix + (p.get("field") or "address"), "message": p["message"]}
                                   for p in problems])
