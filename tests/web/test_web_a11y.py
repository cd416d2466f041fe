"""The accessibility scan (tests/web/a11y.py, axe-core) on every page in its main states."""
from __future__ import annotations

import pytest

from tests.web.a11y import assert_accessible, violations
from tests.web.helpers import watch_errors


async def test_the_scan_finds_a_violation_and_passes_the_home_page(live, browser):
    page = await (await browser.new_context()).new_page()
    errors = watch_errors(page)
    await page.goto(live.base)
    await page.get_by_role("region", name="Live now").wait_for()
    await assert_accessible(page)
    # the scan can fail: an unlabelled field and an empty button on the same page
    await page.evaluate("""() => { const i = document.createElement('input'); i.id = 'nolabel';
        const b = document.createElement('button'); b.id = 'noname';
        document.querySelector('main').append(i, b); }""")
    with pytest.raises(AssertionError) as failed:
        await assert_accessible(page)
    text = str(failed.value)
    assert "label (critical)" in text and "#nolabel" in text and "button-name (critical)" in text, text
    assert "https://dequeuniversity.com/rules/axe/" in text
    await assert_accessible(page, exclude=("#nolabel", "#noname"))
    assert [v["id"] for v in await violations(page)]  # still there, only left out
    assert errors == [], errors
