"""The watch page's weight (issue 16: its JavaScript and CSS under 250 KB compressed): the shell's stylesheet and
modules and everything they import, as served gzipped by /static/. No browser needed: the import graph is read
from the modules themselves."""
from __future__ import annotations

import re

from live.web.assets import Assets

BUDGET = 250 * 1024
IMPORT = re.compile(r"""(?:^|[;\s])import\s*(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]""", re.M)


def graph(assets: Assets, roots: list[str]) -> set[str]:
    """The static paths the roots load, following every static `import ... from '...'`."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path in assets.files, f"{path} is linked or imported but not served"
        seen.add(path)
        if path.endswith(".js"):
            base = path.rsplit("/", 1)[0]
            for spec in IMPORT.findall(assets.files[path].body.decode()):
                if spec.startswith("/static/"):
                    todo.append(spec.removeprefix("/static/"))
                elif spec.startswith("./"):
                    todo.append(f"{base}/{spec[2:]}")
                elif spec.startswith("../"):
                    todo.append(f"{base.rsplit('/', 1)[0]}/{spec[3:]}")
    return seen


async def test_watch_page_javascript_and_css_within_budget(live):
    html = await (await live.client.get("/live/demo")).text()
    roots = [link.split("?")[0].removeprefix("/static/")
             for link in re.findall(r'(?:src|href)="(/static/[^"]+)"', html)]
    assert "js/watch.js" in roots and "app.css" in roots, roots
    assets = Assets.load()
    files = graph(assets, roots)
    assert {"js/room.js", "js/webrtc.js", "js/api.js", "vendor/socket.io.esm.min.js"} <= files, files
    size = sum(len(assets.files[f].gzipped or assets.files[f].body) for f in files)
    assert size < BUDGET, f"the watch page loads {size} bytes compressed ({sorted(files)})"
