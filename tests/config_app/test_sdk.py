"""platform_client.config: sources, merge, typed getters, watches, hot reload, offline cache."""

from __future__ import annotations

import json

import httpx
import pytest

from config_app import services
from platform_client import PlatformSession
from platform_client.config import (
    Config,
    ConfigError,
    EnvSource,
    FileSource,
    PlatformSource,
    Source,
    UrlSource,
    parse_duration,
    wait_for,
)


class Dict(Source):
    """A source returning whatever ``doc`` holds (``None``: failing)."""

    def __init__(self, doc):
        self.doc = doc
        self.name = "dict"

    def load(self):
        if self.doc is None:
            raise ConfigError("down")
        return self.doc


def test_file_sources__json_yaml_toml__merge_in_order(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"db": {"host": "a", "port": 1}, "x": 1}))
    (tmp_path / "b.yaml").write_text("db:\n  host: b\nx: null\n")
    (tmp_path / "c.toml").write_text('[http]\ntimeout = "1m30s"\n')
    config = Config(
        [FileSource(tmp_path / "a.json"), FileSource(tmp_path / "b.yaml"), FileSource(tmp_path / "c.toml")]
    )
    assert config.snapshot == {"db": {"host": "b", "port": 1}, "http": {"timeout": "1m30s"}}
    assert config.get_duration("http.timeout") == 90.0


def test_file_source__missing__fails_unless_optional(tmp_path):
    with pytest.raises(ConfigError):
        Config([FileSource(tmp_path / "none.json")])
    assert Config([FileSource(tmp_path / "none.json", optional=True)]).snapshot == {}


def test_file_source__invalid__is_a_config_error(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError):
        Config([FileSource(tmp_path / "bad.json")])


def test_env_source__double_underscore_nests():
    environ = {"APP_DB__HOST": "h", "APP_DB__MAX_CONNS": "10", "OTHER_X": "1", "APP_DEBUG": "yes"}
    config = Config([EnvSource("APP", environ=environ)])
    assert config.snapshot == {"db": {"host": "h", "max_conns": "10"}, "debug": "yes"}
    assert config.get_int("db.max_conns") == 10
    assert config.get_bool("debug") is True


def test_typed_getters__defaults_and_paths():
    config = Config([Dict({"a": {"b": [1, 2, 3], "f": "2.5", "s": 7, "l": "x, y", "t": True}})])
    assert config.get("a/b/1") == 2 and config.get("a.b") == [1, 2, 3]
    assert config.get("a.zz", "dflt") == "dflt"
    assert config.get_str("a.s") == "7"
    assert config.get_float("a.f") == 2.5
    assert config.get_list("a.l") == ["x", "y"]
    assert config.get_bool("a.t") is True
    assert config.get_int("missing", 5) == 5
    with pytest.raises(ConfigError):
        config.get_int("a.f")


def test_parse_duration():
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1h30m") == 5400
    assert parse_duration(3) == 3.0
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_watch__fires_only_when_that_value_changes():
    source = Dict({"db": {"host": "a"}, "other": 1})
    config = Config([source])
    seen = []
    config.watch("db.host", lambda new, old: seen.append((new, old)))
    source.doc = {"db": {"host": "a"}, "other": 2}
    config.reload()
    source.doc = {"db": {"host": "b"}, "other": 2}
    config.reload()
    assert seen == [("b", "a")]


def test_reload__failing_source__keeps_last_good():
    source = Dict({"a": 1})
    config = Config([source])
    source.doc = None
    config.reload()
    assert config.get("a") == 1
    assert "dict" in config.errors


def test_url_source__reads_json():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"a": {"b": 1}}))
    config = Config([UrlSource("http://config.local/app.json", client=httpx.Client(transport=transport))])
    assert config.get_int("a.b") == 1


def test_url_source__error__is_a_config_error():
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    with pytest.raises(ConfigError):
        Config([UrlSource("http://config.local/x", client=httpx.Client(transport=transport))])


# --- against a live platform ----------------------------------------------------------------------


@pytest.fixture
def platform_session(live_server, service_account):
    client_id, secret = service_account("config:read")
    session = PlatformSession(live_server.url, client_id, secret)
    yield session
    session.close()


@pytest.mark.django_db(transaction=True)
def test_platform_source__resolves_and_merges_with_env(platform_session, tmp_path):
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"db": {"host": "a", "port": 1}}, author="t")
    services.layer_set(namespace="payments", env="prod", data={"db": {"host": "p"}}, author="t")
    config = Config(
        [
            PlatformSource("payments", "prod", session=platform_session, cache_dir=tmp_path),
            EnvSource("PAY", environ={"PAY_DB__PORT": "6543"}),
        ]
    )
    assert config.get_str("db.host") == "p"
    assert config.get_int("db/port") == 6543


@pytest.mark.django_db(transaction=True)
def test_platform_source__unreachable_at_start__uses_the_local_cache(
    platform_session, tmp_path, service_account
):
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"a": 1}, author="t")
    Config([PlatformSource("payments", session=platform_session, cache_dir=tmp_path)])
    # the platform goes away: a session pointed at a closed port
    dead = PlatformSession("http://127.0.0.1:9", "id", "secret", timeout=1)
    config = Config([PlatformSource("payments", session=dead, cache_dir=tmp_path)])
    assert config.get("a") == 1
    assert "serving the local cache" in config.errors["platform:payments/default"]


@pytest.mark.django_db(transaction=True)
def test_platform_source__unreachable_without_cache__raises(tmp_path):
    dead = PlatformSession("http://127.0.0.1:9", "id", "secret", timeout=1)
    with pytest.raises(ConfigError):
        Config([PlatformSource("payments", session=dead, cache_dir=tmp_path)])


@pytest.mark.django_db(transaction=True)
def test_platform_source__hot_reload__long_poll_fallback_fires_watch(platform_session, tmp_path):
    # Given a config watching the platform (a WSGI live server: no websocket there)
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"db": {"host": "a"}, "x": 1}, author="t")
    source = PlatformSource("payments", session=platform_session, cache_dir=tmp_path, wait_seconds=5)
    seen = []
    with Config([source], watch=True) as config:
        config.watch("db.host", lambda new, old: seen.append((new, old)))
        assert wait_for(lambda: source.mode == "long-poll")
        # When the layer changes on the platform (an unrelated value first)
        services.value_set(namespace="payments", env="default", path="x", value=2, author="t")
        assert wait_for(lambda: config.get("x") == 2)
        services.value_set(namespace="payments", env="default", path="db/host", value="b", author="t")
        # Then the new value arrives and the watch fires once, for db.host only
        assert wait_for(lambda: config.get("db.host") == "b")
    assert seen == [("b", "a")]
    assert json.loads((tmp_path / "payments.default.json").read_text())["data"]["db"]["host"] == "b"


@pytest.mark.parametrize(
    "path", ["", "db/", "/db", "db.", ".db", "db//host", "db..host", "db/./host", "db/../db", "/", "."]
)
def test_paths__empty_key_or_dot_segment__value_error_naming_the_path(path):
    config = Config([Dict({"db": {"host": "h"}, "": {"": "empty"}})])
    for read in (config.get, config.get_str, lambda p: config.watch(p, print)):
        with pytest.raises(ValueError, match="does not parse") as caught:
            read(path)
        assert repr(path) in str(caught.value)
    assert config.get("db/host") == config.get("db.host") == "h"
    assert config.snapshot["db"] == {"host": "h"}  # the whole document
    assert config._watchers == {}


class _Waits:
    """A stop event that records each wait of a watch loop and stops it after ``limit`` waits."""

    def __init__(self, limit):
        self.waits, self.limit = [], limit

    def is_set(self):
        return len(self.waits) >= self.limit

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


def test_platform_source__watch_of_an_unreachable_platform__backs_off_up_to_its_maximum(tmp_path):
    # given a platform that cannot be reached
    dead = PlatformSession("http://127.0.0.1:9", "id", "secret", timeout=1)
    source = PlatformSource("orders", "production", session=dead, cache_dir=tmp_path, retry_max_seconds=4)
    stop = _Waits(limit=6)
    # when it is watched
    source.watch(lambda doc: None, stop)
    # then it tried again after 1 s doubling up to 4 s, each wait less up to a fifth
    ceilings = [1, 2, 4, 4, 4, 4]
    assert all(0.8 * c <= w <= c for w, c in zip(stop.waits, ceilings, strict=True)), stop.waits
