"""One error-code registry (live/errors.py `Code`): every code the server answers is declared there once, with
its status; no raise site picks a status; docs/protocol.md's ack codes and the OpenAPI document say the same."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from live.errors import Code, DomainError, error_body
from live.http.api import Api, openapi_document

ROOT = Path(__file__).resolve().parents[2]
# functions that take an error code, and the position of the code among their positional arguments
CODE_ARGS = {"DomainError": 0, "error_body": 0, "_err": 0, "refused": 0, "_refuse": 1, "_in_range": 1}


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _error_subclasses(tree: ast.Module) -> set[ast.ClassDef]:
    return {c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
            and any(_name(b) in ("DomainError", "UnknownUser", "RateLimited", "InvalidPayload") for b in c.bases)}


def scan(path: Path) -> list[tuple[str, int, str]]:
    """(code, line, how) for every code string the module passes to an error builder, puts in an `error` dict
    literal, or compares with an error's `.code`; how = 'status' marks a builder given a status by hand."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, str]] = []
    for cls in _error_subclasses(tree):  # super().__init__("code", ...) in a DomainError subclass
        for node in ast.walk(cls):
            if isinstance(node, ast.Call) and _name(node.func) == "__init__" and node.args:
                if (code := _str(node.args[0])) is not None:
                    found.append((code, node.lineno, "subclass"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and (index := CODE_ARGS.get(node.func.id)) is not None):
            if len(node.args) > index and (code := _str(node.args[index])) is not None:
                found.append((code, node.lineno, _name(node.func)))
            if _name(node.func) == "DomainError" and any(k.arg == "status" for k in node.keywords):
                found.append(("", node.lineno, "status"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if _str(key) == "code" and (code := _str(value)) is not None:
                    found.append((code, node.lineno, "dict"))
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "code":
            for right in node.comparators:
                items = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
                found += [(code, node.lineno, "compare") for item in items if (code := _str(item)) is not None]
    return found


def used_codes() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in sorted((ROOT / "live").rglob("*.py")):
        for code, line, how in scan(path):
            used.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{line} ({how})")
    return used


def test_the_scan_sees_the_raise_sites():
    used = used_codes()
    assert {"invalid", "conflict", "out_of_stock", "unauthorized", "rate_limited", "too_many_connections",
            "length_required", "provider_unavailable", "invalid_payload"} <= set(used)
    assert len(used) >= 30


def test_every_code_used_under_live_is_registered_and_no_raise_site_passes_a_status():
    used = used_codes()
    assert "" not in used, f"a DomainError given a status by hand: {used.get('')}"
    unknown = {code: where for code, where in used.items() if code not in Code.__members__.values()}
    assert not unknown, f"codes missing from live/errors.py Code: {unknown}"


def test_every_registered_code_is_used():
    referenced = set(used_codes())
    for path in (ROOT / "live").rglob("*.py"):  # Code.NOT_FOUND etc. (the middleware's map of aiohttp's errors)
        referenced |= {Code[name].value for name in re.findall(r"\bCode\.([A-Z_]+)\b", path.read_text())}
    assert {c.value for c in Code} - referenced == set(), "registered codes nothing answers"


def test_a_code_has_one_status_and_unknown_codes_are_refused():
    assert len({c.value for c in Code}) == len(Code)
    assert all(400 <= c.status <= 599 and c.message for c in Code)
    assert DomainError("out_of_stock", "only 2 left").status == 409
    assert DomainError("forbidden").message == Code.FORBIDDEN.message
    with pytest.raises(ValueError):
        DomainError("no_such_code", "made up at the raise site")
    with pytest.raises(TypeError):
        DomainError("conflict", "x", status=400)  # type: ignore[call-arg]


def test_rest_and_acks_share_one_error_body():
    err = DomainError("validation_failed", "invalid request body", details=[{"field": "x", "message": "m"}])
    assert err.body() == error_body("validation_failed", "invalid request body", [{"field": "x", "message": "m"}])
    assert error_body("muted", "you are muted") == {"code": "muted", "message": "you are muted"}


def test_protocol_md_lists_the_ack_codes():
    text = (ROOT / "docs" / "protocol.md").read_text()
    listed = re.search(r"with `code` one of (.*?)\. ", text, re.S)
    assert listed, "docs/protocol.md: the sentence listing the ack codes"
    assert set(re.findall(r"`([a-z_]+)`", listed.group(1))) == {c.value for c in Code if c.ack}


def test_openapi_error_schema_lists_the_registry():
    doc = openapi_document(Api(), title="t", version="0")
    code = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert code["enum"] == [c.value for c in Code]
    statuses = dict(item.split(": ") for item in code["description"].split("; "))
    assert statuses == {c.value: str(c.status) for c in Code}
