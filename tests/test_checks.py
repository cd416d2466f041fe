"""Checks that keep the structure: ruff, the import-layering contract (import-linter, `[tool.importlinter]` in
pyproject.toml), thin transports, and the python-socketio/python-engineio versions live/rooms/sio.py and
live/rooms/transport.py were written for. Each failure prints the tool's own report."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from live.rooms import sio

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BIN = Path(sys.executable).parent
PACKAGES = ("live", "db", "loadtests")

# the REST handlers, the socket room handlers and the socket cart handlers
HANDLERS = sorted((ROOT / "live" / "http").glob("*.py")) + [ROOT / "live/rooms/gateway.py",
                                                           ROOT / "live/commerce/cart_socket.py"]
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.S)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff():
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", *PACKAGES, "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_contract():
    result = run(str(BIN / "lint-imports"), "--no-cache", "--no-logo")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_is_in_one_layer():
    (contract,) = [c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    layers = [{m.strip().strip("()") for m in re.split(r"[|:]", layer)} for layer in contract["layers"]]
    names = [n for layer in layers for n in layer]
    assert len(names) == len(set(names)), "a module is in two layers"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "node_modules" not in p.parts}

    def covered(module: str) -> bool:
        return any(module == n or module.startswith(n + ".") for n in names)

    # a package whose modules sit in different layers (live.rooms, live.commerce) is only its __init__
    split = {m for m in modules if any(n.startswith(m + ".") for n in names)}
    assert sorted(m for m in modules - split if not covered(m)) == [], \
        "modules in no layer of [tool.importlinter] in pyproject.toml"


def handler_problems(path: Path) -> list[str]:
    problems = []
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "tx":
            problems.append(f"{name}:{node.lineno} opens a transaction (.tx)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            problems.append(f"{name}:{node.lineno} holds SQL")
    return problems


def test_handlers_hold_no_sql_or_transactions():
    problems = [p for path in HANDLERS for p in handler_problems(path)]
    assert problems == [], "\n".join(problems)


def test_handler_scan_finds_sql_and_transactions(tmp_path):
    handler = tmp_path / "handler.py"
    handler.write_text('async def h(request, db):\n'
                       '    async with db.tx(request) as conn:\n'
                       '        await conn.fetch("SELECT id FROM orders WHERE buyer_id = $1", 1)\n'
                       '    raise ValueError("select a product from the list")\n')
    assert sorted(handler_problems(handler)) == ["handler.py:2 opens a transaction (.tx)", "handler.py:3 holds SQL"]


def test_socketio_versions_are_the_pinned_ones():
    pins = dict(d.split("==") for d in PYPROJECT["project"]["dependencies"] if d.startswith("python-"))
    assert pins == sio.WRITTEN_FOR


def test_other_socketio_versions_are_refused():
    other = {"python-socketio": "5.19.0", "python-engineio": "4.15.1"}
    with pytest.raises(ImportError) as refused:
        sio.check_versions(other.__getitem__)
    message = str(refused.value)
    assert "python-socketio 5.18.1 and python-engineio 4.15.1" in message
    assert "python-socketio 5.19.0 and python-engineio 4.15.1 are installed" in message
    sio.check_versions()  # the installed ones
