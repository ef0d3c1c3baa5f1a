"""The trace dashboard pages (server-rendered): search, waterfall with the raw toggle, graph,
compare, and their odd input."""

from __future__ import annotations

import re

import pytest

from tests.trace_app.conftest import NOW_US, hex_id, post_zipkin, zipkin_span

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def skewed(writer):
    trace, root = hex_id(8), hex_id(8)
    post_zipkin(
        writer,
        [
            zipkin_span(trace, root, "web", name="GET /", kind="CLIENT", duration=10_000),
            zipkin_span(
                trace,
                hex_id(8),
                "api",
                name="list",
                kind="SERVER",
                parentId=root,
                timestamp=NOW_US + 50_000,
                duration=4000,
                tags={"error": "boom"},
            ),
        ],
    )
    return trace


def test_pages_need_a_staff_login(client, skewed):
    for path in ("/ui/trace/", f"/ui/trace/{skewed}/", "/ui/trace/graph/", "/ui/trace/compare/"):
        assert client.get(path).status_code == 302


def test_search__results_with_bars_and_errors(staff, skewed):
    page = staff.get("/ui/trace/?service=api&hours=1").content.decode()
    assert skewed in page and 'class="bar"' in page and "error" in page
    assert "No trace matches" in staff.get("/ui/trace/?service=nobody").content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tag=novalue", "is not key=value"),
        ("min_ms=abc", "Min duration (ms): &#x27;abc&#x27; is not a number"),
        ("max_ms=1e400", "Max duration (ms): &#x27;1e400&#x27; is not a number"),
        ("hours=5", "Pick a time range"),
        ("tag=" + ",".join(f"k{i}=v" for i in range(21)), "Tags has 21 terms; a search takes at most 20."),
        ("word=" + "+".join(["w"] * 21), "Words has 21 terms; a search takes at most 20."),
    ],
)
def test_search__odd_input_is_explained(staff, query, message):
    answer = staff.get(f"/ui/trace/?{query}")
    assert answer.status_code == 200 and message in answer.content.decode()


def test_waterfall__bars_placed_skew_adjusted_and_raw(staff, skewed):
    adjusted = staff.get(f"/ui/trace/{skewed}/").content.decode()
    assert "moved 47 ms for clock skew" in adjusted and 'id="raw-link"' in adjusted
    assert "left:0.0%;width:100.0%" in adjusted and "left:30.0%;width:40.0%" in adjusted
    raw = staff.get(f"/ui/trace/{skewed}/?raw=1").content.decode()
    assert "times as reported" in raw and "left:92.593%" in raw
    assert "times as reported" not in staff.get(f"/ui/trace/{skewed}/?raw=no").content.decode()
    refused = staff.get(f"/ui/trace/{skewed}/?raw=maybe")
    assert refused.status_code == 400
    assert staff.get("/ui/trace/nothex/").status_code == 404
    assert staff.get(f"/ui/trace/{hex_id(8)}/").status_code == 404


def test_graph_and_compare(staff, skewed, writer):
    graph = staff.get("/ui/trace/graph/?hours=6").content.decode()
    assert ">web<" in graph and ">api<" in graph and "1 calls, 1 err" in graph
    # an edge's label is on a white box drawn over its line (the line ran through the text)
    line, box, label = (graph.index(part) for part in ("<line ", '<rect x="', ">1 calls, 1 err"))
    assert line < box < label and 'fill="#fff"' in graph[box:label]
    assert 'id="graph-error"' not in graph
    # a range not in the list says so and shows the last hour, as the search form does
    unknown = staff.get("/ui/trace/graph/?hours=x")
    assert unknown.status_code == 200 and "Pick a time range from the list" in unknown.content.decode()
    other = hex_id(8)
    post_zipkin(writer, [zipkin_span(other, hex_id(8), "web", name="GET /", duration=2000)])
    compared = staff.get(f"/ui/trace/compare/?a={skewed}&b={other}").content.decode()
    assert "only in A" in compared and 'id="compare-rows"' in compared
    assert (
        "The trace A &#x27;zz&#x27; is not 16 or 32 hex"
        in staff.get("/ui/trace/compare/?a=zz&b=zz").content.decode()
    )
    assert "No trace" in staff.get(f"/ui/trace/compare/?a={skewed}&b={hex_id(8)}").content.decode()


def test_search__a_nul_character_is_explained(staff):
    answer = staff.get("/ui/trace/?operation=a%00b")
    assert answer.status_code == 200 and "NUL" in answer.content.decode()


def test_search__lists_whole_128_bit_ids_that_compare_and_the_trace_page_accept(staff, writer):
    """The lists used to show the last 16 hex of a 128-bit id, which no page could find."""
    ids = [hex_id(16), hex_id(16)]
    for trace in ids:
        post_zipkin(writer, [zipkin_span(trace, hex_id(8), "wide", name="GET /")])
    page = staff.get("/ui/trace/?service=wide").content.decode()
    shown = re.findall(r'<code class="trace-id">([0-9a-f]+)</code>', page)
    assert sorted(shown) == sorted(ids)
    assert "slice(-16)" not in page  # the live list's rows too
    assert staff.get(f"/ui/trace/{shown[0]}/").status_code == 200
    compared = staff.get(f"/ui/trace/compare/?a={shown[0]}&b={shown[1]}").content.decode()
    assert 'id="compare-rows"' in compared and 'id="compare-error"' not in compared


def test_compare__one_id_fills_in_the_form_without_an_error(staff, skewed):
    """The trace page's "compare with another trace…" link gives only ``a``."""
    answer = staff.get(f"/ui/trace/compare/?a={skewed}")
    page = answer.content.decode()
    assert answer.status_code == 200 and f'name="a" value="{skewed}"' in page
    assert 'id="compare-error"' not in page and "is required" not in page
    assert 'id="comparison"' not in page
    assert 'id="compare-error"' not in staff.get(f"/ui/trace/compare/?b={skewed}").content.decode()
    # both given: checked as before
    assert "is not 16 or 32 hex" in staff.get(f"/ui/trace/compare/?a={skewed}&b=zz").content.decode()


def test_search__the_live_list_takes_the_search_service_and_error_filter(staff, skewed):
    """The socket filters by ``?service=`` and ``?errors=``: the page passes the search's."""
    page = staff.get("/ui/trace/?service=api&error=on&min_ms=1").content.decode()
    assert 'data-service="api" data-errors="true"' in page
    assert '"/ws/trace/" + liveQuery' in page and 'wanted.set("service"' in page
    assert "only traces with a span of api with an error, as the search" in page
    odd = staff.get("/ui/trace/?service=%22%3E%3Cb%3Ex").content.decode()
    assert 'data-service="&quot;&gt;&lt;b&gt;x"' in odd  # escaped in the attribute
    unfiltered = staff.get("/ui/trace/").content.decode()
    assert 'data-service="" data-errors=""' in unfiltered and 'id="live-filter"' not in unfiltered
