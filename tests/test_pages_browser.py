"""Browser tests: real headless Chromium (Debian package) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30000)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url: str) -> Iterator[object]:
    """A page whose requests may only go to the test server; anything else is aborted."""
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    server = urlparse(base_url).netloc
    pg.foreign_requests = []
    pg.errors = []

    def route(r) -> None:
        if urlparse(r.request.url).netloc == server or r.request.url.startswith("data:"):
            r.continue_()
        else:
            pg.foreign_requests.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    assert pg.foreign_requests == [], pg.foreign_requests
    ctx.close()


def test_home_page_loads(page, base_url: str) -> None:
    page.goto(base_url + "/")
    assert "Jiceng KG" in page.title()
    assert int(page.text_content("#count-triples")) > 200
    page.wait_for_selector(".yasgui .tabsList")
    tabs = page.locator(".tabsList .tab").all_text_contents()
    assert any("temporary-party-branches" in t for t in tabs)
    assert page.errors == []


def test_canned_query_runs_in_editor(page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector(".yasgui .tabsList")
    page.locator(".tabsList .tab", has_text="temporary-party-branches").click()
    page.locator(".tabPanel.active .yasqe_queryButton").click()
    rows = page.locator(".tabPanel.active .yasr table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    text = page.locator(".tabPanel.active .yasr table tbody").text_content()
    assert "花园路街道" in text and "城关乡" in text
    assert page.errors == []


def test_canned_query_page_form(page, base_url: str) -> None:
    page.goto(base_url + "/queries/places")
    page.fill("input[name=within]", "金水")
    page.click("#run")
    page.wait_for_selector("#results tbody tr")
    assert page.text_content("#rowcount") == "2"
    assert "幸福社区" in page.text_content("#results")


def test_entity_page_shows_evidence(page, base_url: str) -> None:
    page.goto(base_url + "/resource/person/zhang-san")
    assert page.text_content("h1") == "张三"
    marks = page.locator("#evidence mark").all_text_contents()
    assert marks and set(marks) == {"张三"}
    assert "花园路街道党工委书记张三" in page.text_content("#evidence")
    page.locator("#links").get_by_role("link", name="花园路街道", exact=True).click()
    page.wait_for_url("**/resource/street/huayuanlu-jiedao")
    assert page.text_content("h1") == "花园路街道"
    assert page.locator("svg.graph a").count() >= 3
