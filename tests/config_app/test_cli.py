"""``platform config ...`` against a live platform."""

from __future__ import annotations

import json
import sys
import threading

import pytest

from config_app import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("config", "admin")


def test_cli__set_get_delete_history_diff_rollback(cli, tmp_path):
    assert cli("create", "payments", "--secret", "db/password")[0] == 0
    code, written, _ = cli("set", "payments", "db/port", "5432", "--env", "prod", "--comment", "port")
    assert code == 0 and written["revision"] == 1 and written["data"] == {"db": {"port": 5432}}
    cli("set", "payments", "db/host", "db.prod", "--env", "prod")
    cli("set", "payments", "db/password", "hunter2", "--env", "prod")
    assert cli("get", "payments", "db/port", "--env", "prod")[1] == 5432
    layer = cli("get", "payments", "--env", "prod", "--layer", "--full")[1]
    assert layer["revision"] == 3 and layer["data"]["db"]["port"] == 5432  # --full was ignored with --layer
    assert cli("get", "payments", "--env", "prod")[1] == {
        "db": {"port": 5432, "host": "db.prod", "password": "hunter2"}
    }

    code, _, _ = cli("delete", "payments", "db/host", "--env", "prod")
    assert code == 0
    code, history, _ = cli("history", "payments")
    assert [h["revision"] for h in history] == [4, 3, 2, 1]
    assert history[-1]["comment"] == "port" and history[0]["source"] == "cli"

    code, diff, _ = cli("diff", "payments", "--env", "prod", "--from", "3", "--to", "4")
    assert diff["removed"] == [{"path": "db/host", "value": "db.prod"}]

    code, rolled, _ = cli("rollback", "payments", "2", "--env", "prod")
    assert rolled["revision"] == 5 and rolled["data"] == {"db": {"port": 5432, "host": "db.prod"}}

    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps({"feature": True}))
    code, written, _ = cli("set", "payments", "--file", str(layer), "--expected-revision", "0")
    assert code == 0 and written["data"] == {"feature": True}


def test_cli__set_a_path_from_a_file(cli, tmp_path):
    cli("create", "payments")
    value = tmp_path / "db.json"
    value.write_text(json.dumps({"port": 7}))
    code, written, err = cli("set", "payments", "db", "--file", str(value))
    assert code == 0, err
    assert written["data"] == {"db": {"port": 7}}


@pytest.mark.parametrize("path", ["db//", "db/", "/db", "db/../pw", "db/./host", "db?x", "db#x"])
def test_cli__path_not_as_written__exits_1_and_changes_nothing(cli, path):
    # given a layer holding db
    cli("create", "payments")
    cli("set", "payments", "db/host", "h")
    # when a path the server does not take as written is set, merged, deleted or read
    for args in (("set", path, "1"), ("set", path, '{"a": 1}', "--merge"), ("delete", path)):
        code, _, err = cli(args[0], "payments", *args[1:])
        # then the platform's 400 names it (not db, nor a URL's normalised db/../pw = pw)
        assert code == 1, (args, err)
        assert json.loads(err)["error"]["code"] == "invalid_path"
        assert json.loads(err)["error"]["details"] == {"path": path}
    for args in (("get", "payments", path, "--layer"), ("get", "payments", path)):
        assert cli(*args)[0] == 1
    assert cli("get", "payments", "--layer", "--full")[1]["revision"] == 1


def test_cli__history_limit__newest_first_and_zero_refused(cli):
    cli("create", "payments")
    for value in range(5):
        cli("set", "payments", "a", str(value))
    code, history, _ = cli("history", "payments", "--limit", "4")
    assert code == 0 and [h["revision"] for h in history] == [5, 4, 3, 2]
    with pytest.raises(SystemExit) as refused:  # page_size=0 reached the platform: a 400, exit 1
        cli("history", "payments", "--limit", "0")
    assert refused.value.code == 2


def test_list_all__a_limit_beyond_one_page__follows_next():
    from platform_client.cli import list_all

    pages = {
        "/h/": {"results": [1, 2], "next": "/h/?cursor=b"},
        "/h/?cursor=b": {"results": [3, 4], "next": "/h/?cursor=c"},
        "/h/?cursor=c": {"results": [5], "next": None},
    }

    class Session:
        asked: list = []

        def call(self, method, path, params=None):
            self.asked.append((path, params))
            return pages[path]

    session = Session()
    assert list_all(session, "/h/", {"env": "prod"}, limit=3) == [1, 2, 3]
    assert session.asked[0] == ("/h/", {"env": "prod", "page_size": "3"})
    assert list_all(Session(), "/h/", limit=2000) == [1, 2, 3, 4, 5]


def test_cli__stale_write__exits_1_with_the_error(cli):
    cli("create", "payments")
    cli("set", "payments", "a", "1")
    code, _, err = cli("set", "payments", "a", "2", "--expected-revision", "0")
    assert code == 1
    assert json.loads(err)["error"]["code"] == "stale_revision"


def test_cli__value_that_starts_as_json_but_is_not__exits_2_unless_string(cli):
    cli("create", "payments")
    code, _, err = cli("set", "payments", "limits", '{"max": 5')
    assert code == 2 and "add --string" in json.loads(err)["error"]["message"]
    code, written, _ = cli("set", "payments", "limits", '{"max": 5', "--string")
    assert code == 0 and written["data"] == {"limits": '{"max": 5'}


def test_cli__a_file_that_is_not_json__exits_2_naming_the_option(cli, tmp_path):
    cli("create", "payments")
    broken = tmp_path / "layer.json"
    broken.write_text('{"feature": tru')
    code, _, err = cli("set", "payments", "--file", str(broken))
    assert code == 2 and json.loads(err)["error"]["message"].startswith("--file is not JSON")
    code, _, err = cli("create", "billing", "--schema", str(broken))
    assert code == 2 and json.loads(err)["error"]["message"].startswith("--schema is not JSON")


def test_cli__watch__prints_each_change(cli, monkeypatch):
    cli("create", "payments")
    cli("set", "payments", "a", "1")

    # The change is made once the first document is printed: made on a timer, a slow machine
    # could make it before the watch's first read, and the watch would wait for a second change.
    printed = threading.Event()
    write = sys.stdout.write
    monkeypatch.setattr(sys.stdout, "write", lambda text: (write(text), printed.set())[0])

    def change() -> None:
        assert printed.wait(30)
        services.value_set(namespace="payments", env="default", path="a", value=2, author="t")

    changer = threading.Thread(target=change)
    changer.start()
    code, out, _ = cli("watch", "payments", "--count", "2", "--wait", "10")
    changer.join()
    lines = [json.loads(line) for line in out.splitlines()[:2]] if isinstance(out, str) else []
    assert code == 0
    assert [line["data"] for line in lines] == [{"a": 1}, {"a": 2}]
    assert out.splitlines()[2:] == ['{"changes": 1}']  # JSON lines to the end
