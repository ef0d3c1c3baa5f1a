"""``platform events ...`` against a live platform."""

from __future__ import annotations

import json

import pytest

from event_app.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("events", "events:read", "events:write")


def test_cli__publish_then_search_and_get(cli):
    # when
    code, published, _ = cli(
        "publish", "order.created", "--data", '{"total": 5}', "--subject", "orders/9", "--ext", "region=eu"
    )
    _, found, _ = cli("search", "--type", "order.*", "--ext", "region=eu")
    _, one, _ = cli("get", str(published["events"][0]["id"]))
    _, summary, _ = cli("summary")
    # then
    assert code == 0 and published["created"] == 1
    assert [(e["type"], e["data"]) for e in found] == [("order.created", {"total": 5})]
    assert one["subject"] == "orders/9"
    assert {s["key"] for s in summary["series"]} >= {"order.created"}
    assert Event.objects.get(type="order.created").source == "/cli"


def test_cli__invalid_event__exits_1_with_error(cli):
    code, _, err = cli("publish", "t", "--ext", "Bad-Name=x")
    assert code == 1
    assert json.loads(err)["error"]["code"] == "invalid_events"


def test_cli__data_that_starts_as_json_but_is_not__exits_2_plain_text_is_a_string(cli):
    code, _, err = cli("publish", "order.created", "--data", '{"total": 5')  # a typo, not text
    assert code == 2 and json.loads(err)["error"]["code"] == "invalid_input"
    assert "--data looks like JSON" in json.loads(err)["error"]["message"]
    assert not Event.objects.filter(type="order.created").exists()
    code, _, _ = cli("publish", "note.added", "--data", "hello")
    assert code == 0 and Event.objects.get(type="note.added").data == "hello"


def test_cli__data_file_that_is_not_json__exits_2(cli, tmp_path):
    broken = tmp_path / "event.json"
    broken.write_text("{nope")
    code, _, err = cli("publish", "order.created", "--data", f"@{broken}")
    assert code == 2 and json.loads(err)["error"]["message"].startswith("--data is not JSON")


def test_cli__subscriptions__create_list_delete(cli):
    _, created, _ = cli(
        "subscriptions", "create", "hook", "--types", "order.*", "--webhook", "http://127.0.0.1:9/"
    )
    _, listed, _ = cli("subscriptions", "list")
    code, _, err = cli("subscriptions", "create", "bad", "--webhook", "ftp://x/")
    for action in ("get", "delete", "deliveries", "redeliver", "create"):  # no NAME: nothing sent
        refused, _, message = cli("subscriptions", action)
        assert refused == 2 and "needs the subscription's NAME" in message
    _, deleted, _ = cli("subscriptions", "delete", "hook")
    assert created["types"] == ["order.*"] and [s["name"] for s in listed] == ["hook"]
    assert code == 1 and json.loads(err)["error"]["code"] == "invalid"
    assert deleted == {"deleted": "hook"}


def test_cli__tail__prints_count_events_even_when_a_replay_brings_more(monkeypatch, capsys):
    import argparse

    from platform_client.cli import events as cli_events

    class Replay:  # a replay delivers its events at once, before the stop lands
        last_event_id = 99

        def __init__(self, session, handler, **filters):
            for number in range(28, 33):
                handler({"id": number, "type": "order.created"})

        def stop(self):
            pass

    monkeypatch.setattr(cli_events, "subscribe", Replay)
    options = argparse.Namespace(
        count=2, timeout=5, types="order.*", sources=None, subject_prefix=None, last_event_id=27
    )

    summary = cli_events.events_tail(None, options)

    printed = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert (printed, summary) == ([28, 29], {"events": 2, "last_event_id": 29})


def test_cli__tail__ctrl_c_says_where_it_stopped_and_exits_130(monkeypatch, capsys):
    # it exited 0, where every other command interrupted exits 130
    import argparse

    from platform_client.cli import events as cli_events

    class Live:
        def __init__(self, session, handler, **filters):
            handler({"id": 41, "type": "order.created"})

        def stop(self):
            pass

    class Interrupted:  # Ctrl-C while the tail waits
        def is_set(self):
            return False

        def wait(self, timeout):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_events, "subscribe", Live)
    monkeypatch.setattr(cli_events.threading, "Event", Interrupted)
    options = argparse.Namespace(
        count=None, timeout=None, types="", sources=None, subject_prefix=None, last_event_id=None
    )

    summary = cli_events.events_tail(None, options)

    assert (summary, options.exit_code) == ({"events": 1, "last_event_id": 41}, 130)
