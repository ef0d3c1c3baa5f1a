"""Pages at a phone's width (400 px): nothing widens the page, and the events chart shrinks to its
card, its current minutes (drawn at the right end) in sight without scrolling."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from event_app.services import event_publish
from tests.trace_app.conftest import hex_id, zipkin_span
from trace_app.decoding.zipkin import decode_json
from trace_app.services import ingest_spans

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"  # the ``staff_user`` fixture's account
PAGE_FITS = "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.fixture
def narrow(page):
    page.set_window_size(400, 900)
    yield page
    page.set_window_size(1280, 900)


def test_trace_page__at_400px__does_not_widen_the_page(narrow, wait, login, url, staff_user):
    trace, root = hex_id(16), hex_id(8)
    spans = [
        zipkin_span(trace, root, "demo-gateway", name="GET /dispatch", duration=415_000, kind="SERVER"),
        zipkin_span(
            trace, hex_id(8), "demo-customers", name="customers.lookup", parentId=root, duration=400_000
        ),
    ]
    ingest_spans(decode_json(json.dumps(spans).encode()))
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    narrow.get(url(f"/ui/trace/{trace}/"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "trace-id"), trace))
    assert narrow.execute_script(PAGE_FITS)
    card = narrow.find_element(By.ID, "waterfall")
    assert narrow.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", card)


def test_events_chart__at_400px__fits_its_card(narrow, wait, login, url, staff_user):
    event_publish(type="order.created", source="/shop", event_id="e1")
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    narrow.get(url("/ui/events/"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart svg")))
    assert narrow.execute_script(PAGE_FITS)
    assert narrow.execute_script(
        "const card = document.getElementById('chart'), svg = card.querySelector('svg');"
        "return svg.getBoundingClientRect().right <= card.getBoundingClientRect().right"
        " && card.scrollWidth <= card.clientWidth"
    )
