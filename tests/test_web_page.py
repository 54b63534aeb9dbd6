"""The chat page in a real browser: Debian's Chromium driven by Playwright against a real uvicorn process.

Screenshots go to ``test-artifacts/browser/``. Without Chromium or Playwright the tests skip,
unless ``RAG_REQUIRE_BROWSER=1`` (CI sets it), which makes a missing browser a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.answer.retrieval import Pipeline
from rag.config import Settings
from tests.conftest import ROOT, running_server, server_env
from tests.fakes import fake_llm_server

CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
QUESTION = "How many workers did Fenghuang recover wages for?"
FENGHUANG = "凤凰纪委为农民工解“薪”愁"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Chromium flags for a machine with no network: no background connections, no GPU, no sandbox as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records what the answer bubble showed while it was still streaming.
WATCH_STREAM = """
window.__streamed = [];
new MutationObserver(() => {
  for (const item of document.querySelectorAll('.msg.assistant.streaming .text')) {
    if (item.textContent) window.__streamed.push(item.textContent);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _require_browser() -> Any:
    required = os.environ.get("RAG_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        if required:
            raise FileNotFoundError(f"{CHROMIUM}: install Debian's chromium (apt-get install chromium)")
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(
    browser: Any, seed_settings: Settings, seed_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("web")
    with running_server(server_env(seed_settings, folder), folder / "server.log") as base:
        yield base


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    _wait_until_loaded(page)
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def _wait_until_loaded(page: Any) -> None:
    """The page has read /api/health: the generator menu is filled."""
    page.locator("#generator option").first.wait_for(state="attached")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _ask(page: Any, question: str) -> Any:
    """Type the question, send it with Enter, and wait for its answer to finish."""
    before = page.locator(".msg.assistant").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator(".msg.assistant").nth(before)
    answer.and_(page.locator(".msg.assistant:not(.streaming)")).wait_for()
    return answer


def test_the_page_and_its_files_come_from_the_app(server: str, page: Any) -> None:
    loaded: list[str] = []
    page.on("request", lambda request: loaded.append(request.url))
    page.reload()
    page.wait_for_load_state("networkidle")
    _wait_until_loaded(page)
    assert loaded and all(url.startswith(server) or url.startswith("data:") for url in loaded), loaded
    assert page.title() == "News Q&A"
    options = page.locator("#generator option").all_inner_texts()
    assert "extractive" in options and page.input_value("#generator") == "extractive"


def test_streamed_answer_with_a_clickable_citation(browser: Any, server: str) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    context.add_init_script(WATCH_STREAM)
    page = context.new_page()
    page.goto(server)
    _wait_until_loaded(page)
    answer = _ask(page, QUESTION)

    streamed = page.evaluate("window.__streamed")
    assert any("386" in text for text in streamed), streamed
    assert "386" in answer.locator(".text").inner_text()
    assert answer.locator(".sources").inner_text().strip() == f"[1] {FENGHUANG}"

    answer.locator(".cite", has_text="[1]").click()
    source = page.locator("#source")
    assert source.is_visible()
    assert page.inner_text("#source-title") == f"[1] {FENGHUANG}"
    highlighted = source.locator("mark").inner_text()
    assert "386" in highlighted and highlighted in source.locator(".source-text").inner_text()
    _shot(page, "desktop-answer-and-source")
    context.close()


def test_phone_size_in_chinese(browser: Any, server: str) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    _wait_until_loaded(page)
    assert page.inner_text("#send") == "发送" and page.get_attribute("html", "lang") == "zh-CN"
    answer = _ask(page, "凤凰县为多少名农民工追回了拖欠工资？")
    assert "386" in answer.inner_text()
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "phone-answer")

    answer.locator(".cite").first.click()
    box = page.locator("#source").bounding_box()
    assert box is not None and box["width"] == PHONE["width"]  # the passage covers the screen
    assert "386" in page.locator("#source mark").inner_text()
    _shot(page, "phone-source")
    page.click("#close-source")
    assert page.locator("#source").is_hidden()
    context.close()


def test_unanswerable_question_shows_the_abstention(page: Any) -> None:
    answer = _ask(page, "Who is the county head of Fenghuang?")
    assert "abstained" in (answer.get_attribute("class") or "")
    assert answer.locator(".status").inner_text() == "Not found in the documents"
    assert answer.locator(".text").inner_text() == "The documents do not contain the answer."
    assert answer.locator(".note").first.inner_text()  # the server's reason
    assert answer.locator(".cite").count() == 0
    _shot(page, "desktop-abstention")


def test_follow_up_sends_the_history_and_new_chat_clears_it(page: Any) -> None:
    sent: list[dict[str, Any]] = []
    page.on(
        "request", lambda request: sent.append(json.loads(request.post_data)) if "/api/ask" in request.url else None
    )
    _ask(page, QUESTION)
    follow_up = _ask(page, "And how much money was that?")
    # The question made standalone on the server (by the rules, with the extractive generator).
    assert follow_up.locator(".searched").inner_text() == "Searched for: And how much money was that? (Fenghuang)"
    assert sent[0]["history"] == []
    assert [turn["role"] for turn in sent[1]["history"]] == ["user", "assistant"]
    assert sent[1]["history"][0]["content"] == QUESTION

    page.click("#new-chat")
    assert page.locator(".msg").count() == 0 and page.locator("#empty").is_visible()
    _ask(page, QUESTION)
    assert sent[2]["history"] == []


def test_shift_enter_is_a_new_line_not_a_question(page: Any) -> None:
    page.fill("#question", "first line")
    page.press("#question", "Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#question") == "first line\nsecond line"
    assert page.locator(".msg").count() == 0


def test_stop_cancels_a_streaming_answer(page: Any) -> None:
    # The server never answers this request, so the answer stays in its streaming state.
    page.route("**/api/ask/stream", lambda route: None)
    page.fill("#question", QUESTION)
    page.press("#question", "Enter")
    page.locator(".msg.assistant.streaming").wait_for()
    assert page.locator(".msg.assistant .status").inner_text() == "Reading the documents…"
    assert page.locator("#stop").is_visible() and page.locator("#send").is_hidden()
    page.click("#stop")
    assert page.locator(".msg.assistant .note").inner_text() == "Stopped."
    assert page.locator(".msg.assistant .status").count() == 0
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_hidden()


def test_errors_are_readable(page: Any) -> None:
    # A 4xx from the server: its message is shown.
    page.evaluate("document.querySelector('#generator').add(new Option('no-such-generator', 'no-such-generator'))")
    page.select_option("#generator", "no-such-generator")
    answer = _ask(page, QUESTION)
    assert "error" in (answer.get_attribute("class") or "")
    assert "no-such-generator" in answer.inner_text() and "extractive" in answer.inner_text()

    # The server unreachable.
    page.select_option("#generator", "extractive")
    page.route("**/api/ask/stream", lambda route: route.abort("connectionrefused"))
    answer = _ask(page, QUESTION)
    assert answer.inner_text() == "Cannot reach the server. Is it running?"


def test_upload_ask_and_delete_a_document(page: Any, tmp_path: Path) -> None:
    article = tmp_path / "linli-bridges.txt"
    article.write_text(
        "临澧县农村公路建设提速\n"
        "今年以来，临澧县加快农村公路建设，全县新建农村公路桥梁 47 座，"
        "改造危桥 12 座，群众出行更加便捷。县交通运输局表示，明年还将继续推进桥梁建设。\n",
        encoding="utf-8",
    )
    # Opened while the server had no index yet (its health said so), the page warns ...
    not_ready = {"status": "not ready", "ready": False, "detail": "no index yet", "generators": ["extractive"]}
    page.route("**/api/health", lambda route: route.fulfill(status=503, json=not_ready))
    page.reload()
    page.locator("#banner", has_text="no index yet").wait_for()
    page.unroute("**/api/health")
    page.click("#toggle-docs")
    page.locator("#doc-list li").first.wait_for()
    page.set_input_files("#upload-file", str(article))
    page.click("#upload-form button[type=submit]")
    page.locator("#upload-status", has_text="Added linli-bridges.txt").wait_for()
    page.locator("#banner").wait_for(state="hidden")  # ... until an upload has made one
    # The list is reloaded before the status says so.
    assert page.locator("#doc-list li", has_text="linli-bridges.txt").count() == 1
    _shot(page, "desktop-documents")
    # The same name again: the page asks before it replaces the document.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.evaluate("document.getElementById('upload-status').textContent = ''")
    page.set_input_files("#upload-file", str(article))
    page.click("#upload-form button[type=submit]")
    page.locator("#upload-status", has_text="Added linli-bridges.txt").wait_for()
    assert asked and "Replace" in asked[0]

    page.click("#close-docs")
    answer = _ask(page, "临澧县今年新建了多少座农村公路桥梁？")
    assert "47" in answer.inner_text()
    # Titled by its headline, not its file name.
    assert answer.locator(".sources").inner_text().strip() == "[1] 临澧县农村公路建设提速"

    page.click("#toggle-docs")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#doc-list li", has_text="linli-bridges.txt").get_by_role("button").click()
    page.locator("#upload-status", has_text="Deleted linli-bridges.txt").wait_for()
    assert page.locator("#doc-list li", has_text="linli-bridges.txt").count() == 0


def test_with_api_keys_the_page_asks_for_one(
    browser: Any, seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    env = server_env(seed_settings, tmp_path, RAG_API_KEYS="page-test-key")
    with running_server(env, tmp_path / "server.log") as base:
        context = browser.new_context(viewport=DESKTOP, locale="en-US")
        page = context.new_page()
        page.goto(base)
        page.wait_for_load_state("networkidle")
        # Without a key, health says only whether the service is ready: no generators listed.
        assert page.locator("#generator option").count() == 0
        answer = _ask(page, QUESTION)
        assert "API key" in answer.inner_text() and page.locator("#key-form").is_visible()

        page.fill("#api-key", "page-test-key")
        page.click("#key-form button[type=submit]")
        assert page.locator("#key-form").is_hidden()
        _wait_until_loaded(page)
        assert "386" in _ask(page, QUESTION).inner_text()
        page.reload()  # the key stays in the browser
        _wait_until_loaded(page)
        assert page.input_value("#api-key") == "page-test-key"
        assert "386" in _ask(page, QUESTION).inner_text()
        context.close()


def test_a_slow_model_answer_is_previewed_by_the_quoted_evidence(
    browser: Any, seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """The openai generator against a scripted LLM server that takes 3 s before its first word."""
    replies = {"Fenghuang": "Fenghuang recovered wages for 386 workers [2]."}
    with fake_llm_server(replies, delay_s=3.0) as llm:
        env = server_env(seed_settings, tmp_path, RAG_GENERATOR="openai", RAG_OPENAI_BASE_URL=llm)
        with running_server(env, tmp_path / "server.log") as base:
            context = browser.new_context(viewport=DESKTOP, locale="en-US")
            page = context.new_page()
            page.goto(base)
            _wait_until_loaded(page)
            page.fill("#question", QUESTION)
            page.press("#question", "Enter")
            preview = page.locator(".msg.assistant.streaming .preview")
            preview.wait_for()
            assert "386" in preview.locator(".quote").inner_text()
            assert preview.locator(".cite").inner_text() == f"[1] {FENGHUANG}"
            assert page.locator(".msg.assistant .status").inner_text() == "Writing the answer…"
            _shot(page, "desktop-preview")
            answer = page.locator(".msg.assistant:not(.streaming)")
            answer.wait_for()
            assert answer.locator(".preview").count() == 0  # the answer replaced it
            assert answer.locator(".text").inner_text() == "Fenghuang recovered wages for 386 workers [1]."
            assert answer.locator(".sources").inner_text().strip() == f"[1] {FENGHUANG}"
            context.close()


WATCH_STATUS = """
window.__statuses = [];
new MutationObserver(() => {
  const status = document.getElementById('upload-status');
  if (status && status.textContent) window.__statuses.push(status.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_an_uploaded_scan_is_cited_on_its_page_with_the_box_highlighted(
    browser: Any, model_cache: Path, real_embedder: Any, seed_scan: Any, seed_scan_pdf: bytes, tmp_path: Path
) -> None:
    # A server whose index holds one unrelated article: the answer can only come from the scan.
    from rag.library import index_paths

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "bus.txt").write_text(
        "株洲市今年新建公交候车亭 126 座，更换新能源公交车 85 台。", encoding="utf-8"
    )
    index_paths(Settings(index_dir=tmp_path / "index", cache_dir=model_cache), [tmp_path / "other"], real_embedder)
    scan = tmp_path / "hunan-daily-scan.pdf"
    scan.write_bytes(seed_scan_pdf)
    env = {
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_CACHE_DIR": str(model_cache),
        "RAG_DOCUMENTS_DIR": str(tmp_path / "documents"),
        "RAG_GENERATOR": "extractive",
    }
    with running_server(env, tmp_path / "server.log") as base:
        context = browser.new_context(viewport=DESKTOP, locale="en-US")
        context.add_init_script(WATCH_STATUS)
        page = context.new_page()
        page.set_default_timeout(240_000)
        page.goto(base)
        page.click("#toggle-docs")
        page.set_input_files("#upload-file", str(scan))
        page.click("#upload-form button[type=submit]")
        page.locator("#upload-status", has_text="Added hunan-daily-scan.pdf").wait_for()
        statuses = page.evaluate("window.__statuses")
        assert any("reading scanned pages (OCR)" in s for s in statuses), statuses  # pages counted as they are read
        assert "4 scanned pages" in page.locator("#doc-list li", has_text="hunan-daily-scan.pdf").inner_text()
        page.click("#close-docs")

        answer = _ask(page, QUESTION)
        assert "386" in answer.locator(".text").inner_text()
        assert answer.locator(".sources").inner_text().strip() == f"[1] {FENGHUANG}"
        answer.locator(".cite", has_text="[1]").click()
        sheet = page.locator("#source-sheet")
        sheet.locator("img").wait_for()
        for _ in range(100):  # the page's CSP forbids wait_for_function's eval: poll from here
            if page.evaluate("document.querySelector('#source-sheet img').naturalWidth") > 0:
                break
            page.wait_for_timeout(100)
        page.click("#source-zoom")  # the whole page, so that every box is inside the view
        image, settled = None, False
        for _ in range(40):  # until the page has been laid out again (the same box twice running)
            now = sheet.locator("img").bounding_box()
            settled, image = now is not None and now == image, now
            if settled:
                break
            page.wait_for_timeout(50)
        assert image and settled
        shown = []  # each highlighted box, as fractions of the page image it is drawn on
        for hit in sheet.locator(".box.hit").all():
            box = hit.bounding_box()
            assert box
            shown.append(
                (
                    (box["x"] - image["x"]) / image["width"],
                    (box["y"] - image["y"]) / image["height"],
                    (box["x"] + box["width"] - image["x"]) / image["width"],
                    (box["y"] + box["height"] - image["y"]) / image["height"],
                )
            )
        line = next(line for line in seed_scan.lines if "为386名农民工追回" in "".join(line.text.split()))
        width, height = seed_scan.pages[line.page - 1].size
        printed = (line.box[0] / width, line.box[1] / height, line.box[2] / width, line.box[3] / height)
        # The evidence sentence's lines are highlighted, the one printing 386 among them.
        assert any(max(abs(a - b) for a, b in zip(box, printed, strict=True)) < 0.01 for box in shown), (shown, printed)
        assert page.inner_text("#source-page-meta") == f"Page {line.page} of the scan: the evidence is highlighted."
        _shot(page, "desktop-scan-whole-page")
        page.click("#source-zoom")
        assert page.inner_text("#source-zoom") == "Whole page"
        # Zoomed in, the view is scrolled to the evidence: its first line shows (the page is laid out again
        # first, so the boxes are read until two readings agree).
        view, first = None, None
        for _ in range(40):
            now = (page.locator("#source-view").bounding_box(), sheet.locator(".box.hit").first.bounding_box())
            if now == (view, first):
                break
            (view, first) = now
            page.wait_for_timeout(50)
        assert view and first and view["y"] <= first["y"] <= view["y"] + view["height"] - first["height"], (view, first)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # not full-page: that re-lays the page out, unscrolled
        page.screenshot(path=str(ARTIFACTS / "desktop-scan-citation.png"))
        context.close()
