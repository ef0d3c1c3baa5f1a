"""Configuration for services: merged sources, typed getters, change callbacks, hot reload.

```python
from platform_client import PlatformSession
from platform_client.config import Config, EnvSource, FileSource, PlatformSource

config = Config(
    sources=[
        FileSource("defaults.toml"),                      # JSON, YAML or TOML, by extension
        PlatformSource("payments", env="production", session=PlatformSession()),
        EnvSource("PAYMENTS"),                            # PAYMENTS_DB__HOST=... -> db.host
    ],
    watch=True,                                           # hot reload in a background thread
)
config.get_str("db.host", "localhost")                    # dotted or slash paths
config.get_duration("http/timeout", 5.0)                  # "250ms", "30s", "1h30m" or a number (s)
config.watch("db.host", lambda new, old: reconnect(new))  # only when that value changes
```

Sources are merged in order (later wins; objects merge key by key; an explicit ``null`` deletes
a key), like the platform's own layers.  ``get()`` walks the already merged snapshot with the
split path cached, so it costs a few dictionary lookups; the values returned are shared with the
snapshot and must not be mutated.

``PlatformSource`` reads ``/api/v1/config/namespaces/{ns}/resolve``; with ``watch=True`` it
follows changes over the ``/ws/config/`` websocket and falls back to long-polling
(``?wait=30s&revision=N``) when the websocket is not available.  Every good document is written
to a local cache file; when the platform is unreachable the source keeps its last good document
(or, at start, the cached file), as the original config client kept its old config on a failed
sync.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from platform_client._backoff import Backoff
from platform_client.documents import (
    MISSING,
    ConfigError,
    deep_merge,
    parse_duration,
    split_path,
    wait_for,
    walk,
)
from platform_client.session import WEBSOCKET_LOG, PlatformError, PlatformSession, token_refused

__all__ = [
    "Config",
    "ConfigError",
    "EnvSource",
    "FileSource",
    "PlatformSource",
    "Source",
    "UrlSource",
    "deep_merge",
    "parse_duration",
    "wait_for",
]

log = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def boolean(text: str) -> bool:
    """A flag's text: 1/true/yes/on/y/t or 0/false/no/off/n/f/"" in any case; ValueError else."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(text)


# --- Sources --------------------------------------------------------------------------------------


class Source(ABC):
    """Something that loads a JSON-like document (a dict)."""

    name = "source"

    @abstractmethod
    def load(self) -> dict:
        """The document as it is now; raise when it cannot be read (the last good one is kept)."""

    def watch(self, on_change: Callable[[dict], None], stop: threading.Event) -> None:
        """Block, calling ``on_change(document)`` on every change, until ``stop`` is set.

        Sources that cannot watch return at once (the default).
        """
        return


class FileSource(Source):
    """A JSON, YAML (``.yaml``/``.yml``) or TOML file; ``optional`` files may be missing."""

    def __init__(
        self, path: str | os.PathLike, *, format: str | None = None, optional: bool = False, poll: float = 0
    ) -> None:
        self.path = Path(path)
        self.format = (format or self.path.suffix.lstrip(".") or "json").lower()
        self.optional = optional
        self.poll = poll
        self.name = f"file:{self.path}"

    def load(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self.optional:
                return {}
            raise ConfigError(f"{self.path} does not exist") from None
        try:
            if self.format == "toml":
                data = tomllib.loads(raw.decode())
            elif self.format in {"yaml", "yml"}:
                import yaml

                data = yaml.safe_load(raw) or {}
            else:
                data = json.loads(raw)
        except Exception as exc:
            raise ConfigError(f"{self.path} does not parse as {self.format}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path} must hold an object at the top")
        return data

    def watch(self, on_change: Callable[[dict], None], stop: threading.Event) -> None:
        if self.poll <= 0:
            return
        last = self._mtime()
        while not stop.wait(self.poll):
            mtime = self._mtime()
            if mtime != last:
                last = mtime
                try:
                    on_change(self.load())
                except (ConfigError, OSError) as exc:  # unreadable for now: the next change retries
                    log.warning("config: keeping the last good %s: %s", self.name, exc)

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None


class EnvSource(Source):
    """Environment variables ``PREFIX_DB__HOST=x`` -> ``{"db": {"host": "x"}}`` (keys lower-cased).

    Values stay strings; the typed getters convert them.
    """

    def __init__(
        self, prefix: str, *, separator: str = "__", environ: Mapping[str, str] | None = None
    ) -> None:
        self.prefix = prefix.rstrip("_").upper() + "_"
        self.separator = separator
        self.environ = environ
        self.name = f"env:{self.prefix}"

    def load(self) -> dict:
        environ = os.environ if self.environ is None else self.environ
        data: dict = {}
        for key in sorted(environ):
            if not key.upper().startswith(self.prefix) or len(key) == len(self.prefix):
                continue
            parts = [p.lower() for p in key[len(self.prefix) :].split(self.separator) if p]
            if not parts:
                continue
            node = data
            for part in parts[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[parts[-1]] = environ[key]
        return data


class UrlSource(Source):
    """A JSON (or YAML, by content type) document fetched over HTTP(S); a failure keeps the last good."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.client = client
        self.name = f"url:{url}"

    def load(self) -> dict:
        try:
            if self.client is not None:
                response = self.client.get(self.url, headers=self.headers, timeout=self.timeout)
            else:
                response = httpx.get(self.url, headers=self.headers, timeout=self.timeout)
            response.raise_for_status()
            if "yaml" in response.headers.get("content-type", ""):
                import yaml

                data = yaml.safe_load(response.text) or {}
            else:
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ConfigError(f"{self.url}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.url} must answer an object")
        return data


class PlatformSource(Source):
    """The platform's resolved (namespace, env) document, watched over the websocket or long-poll.

    ``cache_dir`` (default ``$PLATFORM_CONFIG_CACHE_DIR`` or ``~/.cache/micro-platform/config``)
    keeps the last good document on disk for starts while the platform is unreachable.
    """

    def __init__(
        self,
        namespace: str,
        env: str = "default",
        *,
        session: PlatformSession | None = None,
        cache_dir: str | os.PathLike | None = None,
        wait_seconds: int = 30,
        websocket: bool = True,
        ws_url: str | None = None,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 15.0,
    ) -> None:
        self.namespace = namespace
        self.env = env
        self._session = session
        #: Why the last load came from the local cache file (None: it came from the platform).
        self.stale: str | None = None
        self.wait_seconds = wait_seconds
        self.websocket = websocket
        self.ws_url = ws_url or os.environ.get("PLATFORM_WS_URL")
        self.retry_seconds = retry_seconds
        self.retry_max_seconds = retry_max_seconds
        directory = (
            cache_dir
            or os.environ.get("PLATFORM_CONFIG_CACHE_DIR")
            or (Path.home() / ".cache" / "micro-platform" / "config")
        )
        self.cache_file = Path(directory) / f"{namespace}.{env}.json"
        self.revision: int | None = None
        self.mode = "none"  # "websocket" or "long-poll" while watching
        self.name = f"platform:{namespace}/{env}"

    @property
    def session(self) -> PlatformSession:
        if self._session is None:
            self._session = PlatformSession()
        return self._session

    @property
    def path(self) -> str:
        return f"/api/v1/config/namespaces/{self.namespace}/resolve"

    def load(self) -> dict:
        try:
            body = self.session.call("GET", self.path, params={"env": self.env})
        except (PlatformError, httpx.HTTPError, ValueError) as exc:
            cached = self._read_cache()
            if cached is None:
                raise ConfigError(f"{self.name}: {exc}") from exc
            log.warning("config: %s unreachable (%s); using the local cache", self.name, exc)
            self.revision = cached.get("revision")
            self.stale = f"{self.name}: {exc}; serving the local cache"
            return cached.get("data") or {}
        self.stale = None
        return self._accept(body)

    def _accept(self, body: dict) -> dict:
        self.revision = body.get("revision")
        self._write_cache(body)
        return body.get("data") or {}

    def _read_cache(self) -> dict | None:
        try:
            return json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return None

    def _write_cache(self, body: dict) -> None:
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, prefix=".config-")
            with os.fdopen(fd, "w") as handle:
                json.dump({"revision": body.get("revision"), "data": body.get("data")}, handle)
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("config: could not write the cache file %s: %s", self.cache_file, exc)

    # Watching: websocket first, long-poll when the websocket is not there.

    def watch(self, on_change: Callable[[dict], None], stop: threading.Event) -> None:
        backoff = Backoff(self.retry_seconds, self.retry_max_seconds)
        while not stop.is_set():
            began = time.monotonic()
            try:
                if self.websocket:
                    try:
                        self._watch_websocket(on_change, stop)
                        continue
                    except _NoWebsocket as exc:
                        log.info("config: websocket unavailable (%s); long-polling %s", exc, self.name)
                    # Long-poll for a while, then try the websocket again (a 502 while the
                    # platform restarts must not mean long-polling for good).
                    self._watch_long_poll(on_change, stop, until=time.monotonic() + WEBSOCKET_RETRY_SECONDS)
                else:
                    self._watch_long_poll(on_change, stop)
            except Exception as exc:  # unreachable platform: keep the last good document, retry
                token_refused(self.session.credentials, exc)
                if time.monotonic() - began > self.retry_max_seconds:
                    backoff.reset()  # it had been watching: a new outage
                wait = backoff.next(getattr(exc, "retry_after", None))
                log.warning("config: watching %s failed (%s); retrying in %.1f s", self.name, exc, wait)
                self.mode = "none"
                stop.wait(wait)

    def _ws_url(self) -> str:
        """``ws_url`` / ``$PLATFORM_WS_URL`` (a server whose websockets have their own port, e.g.
        ``platform serve --ws-port``), else the API's own address."""
        if self.ws_url:
            return self.ws_url.rstrip("/") + "/ws/config/"
        return self.session.websocket_url("/ws/config/")

    def _watch_websocket(self, on_change: Callable[[dict], None], stop: threading.Event) -> None:
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        token = self.session.credentials.token()
        try:
            connection = connect(
                self._ws_url(),
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=5,
                close_timeout=1,  # a hung platform does not hold the watch's stop for 10 s
                logger=WEBSOCKET_LOG,
            )
        except (InvalidStatus, InvalidHandshake) as exc:
            raise _NoWebsocket(str(exc)) from exc
        with connection:
            connection.send(json.dumps({"type": "subscribe", "namespace": self.namespace, "env": self.env}))
            self.mode = "websocket"
            while not stop.is_set():
                try:
                    raw = connection.recv(timeout=1.0)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "error":
                    raise ConfigError(f"{self.name}: {message.get('code')}: {message.get('message')}")
                if (
                    message.get("type") == "config"
                    and message.get("namespace") == self.namespace
                    and message.get("env") == self.env
                    and message.get("revision") != self.revision
                ):
                    on_change(self._accept(message))

    def _watch_long_poll(
        self, on_change: Callable[[dict], None], stop: threading.Event, until: float | None = None
    ) -> None:
        self.mode = "long-poll"
        while not stop.is_set() and (until is None or time.monotonic() < until):
            params = {"env": self.env, "wait": f"{self.wait_seconds}s"}
            if self.revision is not None:
                params["revision"] = str(self.revision)
            response = self.session.get(self.path, params=params, timeout=self.wait_seconds + 15)
            if response.status_code == 304:
                continue
            if response.status_code >= 400:
                raise PlatformError.from_response(response)
            body = response.json()
            if body.get("revision") != self.revision:
                on_change(self._accept(body))


class _NoWebsocket(Exception):
    pass


#: Seconds a watch long-polls after a failed websocket handshake before it tries the websocket again.
WEBSOCKET_RETRY_SECONDS = 60.0


# --- Config ---------------------------------------------------------------------------------------


class Config:
    """Sources merged in order into one snapshot, with typed getters and change callbacks."""

    def __init__(self, sources: Iterable[Source], *, watch: bool = False) -> None:
        self.sources = list(sources)
        self._documents: list[dict | None] = [None] * len(self.sources)
        self._snapshot: dict = {}
        self._paths: dict[str, tuple[str, ...]] = {}
        self._watchers: dict[str, list[Callable[[Any, Any], None]]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: dict[str, str] = {}
        self.reload()
        if watch:
            self.start()

    # Reading.

    @property
    def snapshot(self) -> dict:
        """The merged document (shared: do not mutate)."""
        return self._snapshot

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted or slash path, or ``default``; ValueError if the path does not parse."""
        segments = self._paths.get(path)
        if segments is None:
            segments = self._paths[path] = split_path(path)
        node: Any = self._snapshot
        try:
            for segment in segments:
                node = node[segment]
        except (KeyError, TypeError, IndexError):
            return self._walk_lists(segments, default)
        return node

    def _walk_lists(self, segments: tuple[str, ...], default: Any) -> Any:
        node = walk(self._snapshot, segments)
        return default if node is MISSING else node

    def _typed(self, path: str, default: Any, convert: Callable[[Any], Any], kind: str) -> Any:
        value = self.get(path, MISSING)
        if value is MISSING:
            return default
        try:
            return convert(value)
        except (ValueError, TypeError, ConfigError) as exc:
            raise ConfigError(f"{path}: {value!r} is not {kind}") from exc

    def get_str(self, path: str, default: str | None = None) -> str | None:
        return self._typed(path, default, lambda v: v if isinstance(v, str) else json.dumps(v), "string")

    def get_int(self, path: str, default: int | None = None) -> int | None:
        def convert(v: Any) -> int:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ValueError(v)
            return int(v)

        return self._typed(path, default, convert, "an integer")

    def get_float(self, path: str, default: float | None = None) -> float | None:
        def convert(v: Any) -> float:
            if isinstance(v, bool):
                raise ValueError(v)
            return float(v)

        return self._typed(path, default, convert, "a number")

    def get_bool(self, path: str, default: bool | None = None) -> bool | None:
        def convert(v: Any) -> bool:
            if isinstance(v, bool):
                return v
            if isinstance(v, int | float):
                return bool(v)
            return boolean(str(v))

        return self._typed(path, default, convert, "a boolean")

    def get_duration(self, path: str, default: float | None = None) -> float | None:
        """Seconds (float) from a number or a string like ``"1m30s"``."""
        return self._typed(path, default, parse_duration, "a duration")

    def get_list(self, path: str, default: list | None = None) -> list | None:
        """A list; a string is split on commas."""

        def convert(v: Any) -> list:
            if isinstance(v, list):
                return v
            if isinstance(v, str):
                return [part.strip() for part in v.split(",") if part.strip()]
            raise ValueError(v)

        return self._typed(path, default, convert, "a list")

    # Changes.

    def watch(self, path: str, callback: Callable[[Any, Any], None]) -> Callable[[], None]:
        """Call ``callback(new, old)`` whenever the value at ``path`` changes; returns an unsubscribe."""
        split_path(path)  # a path that does not parse is refused here, not at every reload
        with self._lock:
            self._watchers.setdefault(path, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                callbacks = self._watchers.get(path, [])
                if callback in callbacks:
                    callbacks.remove(callback)

        return unsubscribe

    def reload(self) -> None:
        """Load every source again; a failing source keeps its last good document."""
        with self._lock:
            for index, source in enumerate(self.sources):
                try:
                    self._documents[index] = source.load()
                    stale = getattr(source, "stale", None)  # loaded, but from a fallback
                    if stale:
                        self.errors[source.name] = stale
                    else:
                        self.errors.pop(source.name, None)
                except ConfigError as exc:
                    self.errors[source.name] = str(exc)
                    if self._documents[index] is None:
                        raise
                    log.warning("config: keeping the last good %s: %s", source.name, exc)
            self._publish()

    def _update(self, index: int, document: dict) -> None:
        with self._lock:
            self._documents[index] = document
            self._publish()

    def _publish(self) -> None:
        merged: dict = {}
        for document in self._documents:
            if document:
                merged = deep_merge(merged, document)
        old, self._snapshot = self._snapshot, merged
        for path, callbacks in list(self._watchers.items()):
            segments = split_path(path)
            before = walk(old, segments)
            after = walk(merged, segments)
            if before != after:
                for callback in list(callbacks):
                    try:
                        callback(None if after is MISSING else after, None if before is MISSING else before)
                    except Exception:
                        log.exception("config: a watch callback for %s failed", path)

    # Hot reload.

    def start(self) -> None:
        """Follow every watchable source in a background (daemon) thread."""
        if self._threads:
            return
        self._stop.clear()
        for index, source in enumerate(self.sources):
            thread = threading.Thread(
                target=source.watch,
                args=(lambda doc, i=index: self._update(i, doc), self._stop),
                name=f"config-watch-{source.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> Config:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
