"""The browser tests' accessibility scan: axe-core (tests/js/node_modules, an exact version in tests/js/package.json)
run in the page as it is, failing on every serious or critical violation of WCAG 2.0/2.1 A and AA and axe's best
practices. A page's test calls it at each state worth checking:

    await assert_accessible(page)                          # the whole document
    await assert_accessible(page, exclude=("#video",))     # leave out what is not ours (CSS selectors)

The pages' Content-Security-Policy allows no injected script (script-src 'self', no 'unsafe-eval'), so axe's
source is not added as a <script>: it is evaluated through Playwright's page.evaluate, which the DevTools protocol
runs as the inspector would (Runtime.evaluate / callFunctionOn), outside the page's CSP. That keeps the page's
own policy on during the test (a context with bypass_csp=True would turn it off for the page too, hiding a CSP
mistake the other tests would otherwise see)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = f"the accessibility scan needs axe-core at {AXE}: run `cd tests/js && npm ci` (make test does it)"
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
FAIL_ON = ("serious", "critical")

RUN = """async ([exclude, tags]) => {
    const context = exclude.length ? {include: [document], exclude: exclude.map(s => [s])} : document;
    const result = await axe.run(context, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(n => ({target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t),
                                  summary: (n.failureSummary || '').split('\\n').slice(1, 3).join(' ').trim()})),
    }));
}"""


@cache
def _source() -> str:
    if not AXE.is_file():
        raise AssertionError(INSTALL)
    return AXE.read_text(encoding="utf-8")


async def violations(page, *, exclude=()) -> list[dict]:
    """Every axe violation on the page now (any impact), as plain dicts."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(_source() + "\n;undefined")
    return await page.evaluate(RUN, [list(exclude), list(TAGS)])


def describe(found: list[dict]) -> str:
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} - {v['helpUrl']}")
        for node in v["nodes"][:10]:
            lines.append(f"    {', '.join(node['target'])}" + (f"  [{node['summary']}]" if node["summary"] else ""))
        if len(v["nodes"]) > 10:
            lines.append(f"    ... and {len(v['nodes']) - 10} more")
    return "\n".join(lines)


async def assert_accessible(page, *, exclude=()) -> None:
    """Fail, listing them (rule, impact, the nodes' selectors, help URL), when axe finds serious or critical
    violations on the page; moderate and minor ones are not failures."""
    found = [v for v in await violations(page, exclude=exclude) if v["impact"] in FAIL_ON]
    assert not found, f"accessibility violations on {page.url}:\n{describe(found)}"
