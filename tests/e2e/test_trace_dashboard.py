"""The trace dashboard in a real browser: an app instrumented with the stock OpenTelemetry SDK
exports to the platform; its trace appears live, opens as a waterfall, and the graph draws it."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from platform_client.session import PlatformSession
from tests.e2e.conftest import operator_login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def export_a_trace(base: str, token: str) -> str:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    def provider(service: str) -> TracerProvider:
        exporter = OTLPSpanExporter(
            endpoint=f"{base}/v1/traces", headers={"Authorization": f"Bearer {token}"}
        )
        made = TracerProvider(resource=Resource.create({"service.name": service}))
        made.add_span_processor(SimpleSpanProcessor(exporter))
        return made

    shop, payments = provider("shop"), provider("payments")
    tracer = shop.get_tracer("e2e")
    with (
        tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as root,
        tracer.start_as_current_span("charge", kind=trace.SpanKind.CLIENT) as call,
        payments.get_tracer("e2e").start_as_current_span(
            "POST /charges", kind=trace.SpanKind.SERVER, context=trace.set_span_in_context(call)
        ) as served,
    ):
        served.set_attribute("card.brand", "visa")
        served.set_status(trace.Status(trace.StatusCode.ERROR, "card declined"))
    shop.shutdown()
    payments.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def test_trace_dashboard__live_list_waterfall_and_graph(browser, request, screenshot_dir):
    platform = request.getfixturevalue("asgi_platform")
    wait = WebDriverWait(browser, 30)
    base = platform.url
    operator_login(browser, base, wait)
    browser.get(f"{base}/ui/trace/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-status"), "live"))
    # when: an instrumented app exports a trace
    with PlatformSession(base, platform.client_id, platform.client_secret) as session:
        trace_id = export_a_trace(base, session.credentials.token())
    # then: it shows in the live list, and opens as a waterfall
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-rows"), trace_id))  # the whole id
    # as one row, though each span was exported on its own: the batches of a trace are merged
    row = f"#live-rows tr[data-trace='{trace_id}']"
    wait.until(lambda _: browser.find_element(By.CSS_SELECTOR, row + " td:nth-child(3)").text == "3")
    [merged] = [r for r in browser.find_elements(By.CSS_SELECTOR, "#live-rows tr") if trace_id in r.text]
    cells = [cell.text for cell in merged.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "shop: POST /checkout" and set(cells[3].split(", ")) == {"shop", "payments"}
    assert merged.get_attribute("class") == "trace-error"  # and the error shows (it had no style)
    assert (
        merged.find_element(By.TAG_NAME, "td").value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    )
    browser.save_screenshot(str(screenshot_dir / "trace-index.png"))
    browser.find_element(By.LINK_TEXT, trace_id).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "trace-id"), trace_id))
    rows = browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row")
    assert rows[0].find_element(By.CSS_SELECTOR, ".wf-name").text.split(" ")[1:3] == ["POST", "/checkout"]
    assert len(rows) == 3 and "wf-error" in rows[2].get_attribute("class")
    rows[2].find_element(By.TAG_NAME, "summary").click()
    wait.until(ec.visibility_of(rows[2].find_element(By.CSS_SELECTOR, ".wf-detail")))
    assert "card.brand" in rows[2].text and "visa" in rows[2].text
    browser.save_screenshot(str(screenshot_dir / "trace-waterfall.png"))
    # and the service graph draws the call
    browser.get(f"{base}/ui/trace/graph/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#graph svg .node")))
    names = {n.text for n in browser.find_elements(By.CSS_SELECTOR, "#graph svg .node text")}
    assert names == {"shop", "payments"}
    assert "1 calls, 1 err" in browser.find_element(By.CSS_SELECTOR, "#graph svg .edge text").text
    browser.save_screenshot(str(screenshot_dir / "trace-graph.png"))
    # and a search on a span that is not the root finds the trace, its duration drawn as a bar
    browser.get(f"{base}/ui/trace/?service=payments&error=on")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr .bar")))
    [row] = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert trace_id in row.text and "shop: POST /checkout" in row.text
    # the whole trace id is one box (two lines of 16 hex; an inline element that wraps has several)
    shown_id = row.find_element(By.TAG_NAME, "code")
    assert browser.execute_script("return arguments[0].getClientRects().length", shown_id) == 1
    browser.save_screenshot(str(screenshot_dir / "trace-search.png"))
    # and in a narrow window the results table, when wider than its card, scrolls inside the card
    # instead of being cut off at the card's edge or widening the page (with the ids in two lines
    # of 16 hex, this one-span table may also just fit)
    browser.set_window_size(560, 900)
    try:
        browser.get(f"{base}/ui/trace/?service=payments&error=on")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr .bar")))
        card = browser.execute_script("return document.getElementById('results').closest('.card')")
        assert browser.execute_script(
            "const card = arguments[0], table = document.getElementById('results');"
            "return card.scrollWidth > card.clientWidth || table.offsetWidth <= card.clientWidth",
            card,
        )
        assert card.value_of_css_property("overflow-x") == "auto"
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        browser.save_screenshot(str(screenshot_dir / "trace-search-narrow.png"))
    finally:
        browser.set_window_size(1280, 900)
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get("about:blank")
