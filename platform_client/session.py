"""The authenticated HTTP session every SDK module uses.

``PlatformSession`` is an ``httpx.Client`` whose requests carry an OAuth2 access token obtained
with the client-credentials grant.  The token is cached and refreshed shortly before it expires;
a 401 answer (the token was revoked) fetches a new token once and retries.  Configuration comes
from arguments or from ``PLATFORM_URL``, ``PLATFORM_CLIENT_ID``, ``PLATFORM_CLIENT_SECRET`` and
``PLATFORM_SCOPES``.

``PLATFORM_URL`` (or ``base_url``) may name several web nodes of one platform, separated by
commas: requests go to one of them, and when it cannot be reached the session fails over to the
next (see :class:`Failover`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


def _keepalive_quietly(record: logging.LogRecord) -> bool:
    """The websockets library's "keepalive ping failed" (an ERROR with a traceback, each time a
    hung platform lets a ping's send time out) as an INFO line without one: the connection ends,
    and the SDK's watch logs that itself, and reconnects or polls."""
    if record.msg == "keepalive ping failed":
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text = None, None
    return True


#: The logger the SDK's websocket connections log through (``connect(..., logger=WEBSOCKET_LOG)``).
WEBSOCKET_LOG = logging.getLogger("platform_client.websocket")
WEBSOCKET_LOG.addFilter(_keepalive_quietly)

#: Refresh this many seconds before the token's expiry, so no request carries a dying token (half
#: the lifetime for a token that lives under twice as long: it is still fetched once per half).
REFRESH_MARGIN_SECONDS = 30.0
#: After the token endpoint refused the credentials (a 4xx: unknown client, disabled account,
#: the address locked out), the refusal is raised again without asking for this long, doubling
#: with each refusal in a row up to the maximum (a 429's Retry-After when longer), give or take a
#: fifth: asking on every call cannot succeed, and counts towards the platform's lockout of the
#: whole host's address.
REFUSAL_HOLD_SECONDS, REFUSAL_HOLD_MAX_SECONDS = 5.0, 120.0

DEFAULT_URL = "http://127.0.0.1:8000"

#: Methods safe to send again after the connection broke once the request may have been sent.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def platform_urls(given: str | list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The platform's addresses: ``given`` (a list, or commas), else ``$PLATFORM_URL``, else the
    local default; each without its trailing slash."""
    raw = given if given else os.environ.get("PLATFORM_URL") or DEFAULT_URL
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    urls = [part.strip().rstrip("/") for part in parts if part.strip()]
    for url in urls:
        address = urlsplit(url)
        try:
            address.port  # noqa: B018 (raises on a port that is not a number in range)
        except ValueError:
            address = address._replace(netloc="")
        # a path is the platform's behind a proxy; a query, fragment or credentials would be
        # glued to every request's path (the token request went to /?x=1/o/token/)
        extra = address.query or address.fragment or "@" in address.netloc
        if address.scheme not in ("http", "https") or not address.hostname or extra:
            where = "" if given else " (PLATFORM_URL)"
            raise ValueError(f"the platform's address{where} is http(s)://host[:port], not {url!r}")
    return urls or [DEFAULT_URL]


class Failover(httpx.BaseTransport):
    """Sends each request to the node last seen answering; moves to the next address when it
    cannot be reached.

    A request that never reached a node (refused, unreachable, connect timeout) is sent to the
    next one whatever its method; one whose connection broke after it may have been sent (read
    error, the server dropping it) is sent again only when its method is idempotent (or
    ``retry_unsafe`` is set): a POST may have been applied, and is left to the caller.  Every
    address is tried at most once per request; the last error is raised when none answers.
    Several transports may share one ``addresses`` list and ``state``, so the token requests
    and the API calls follow the same node.
    """

    def __init__(
        self,
        addresses: list[str],
        state: list[int] | None = None,
        transport: httpx.BaseTransport | None = None,
        retry_unsafe: bool = False,
    ) -> None:
        self.addresses = [httpx.URL(address) for address in addresses]
        self.state = state if state is not None else [0]  # the index of the current node
        self.inner = transport or httpx.HTTPTransport()
        self.retry_unsafe = retry_unsafe

    @property
    def current(self) -> httpx.URL:
        return self.addresses[self.state[0] % len(self.addresses)]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._send(request)
        except httpx.TransportError as exc:  # name what could not be reached: "refused" alone does not
            exc.args = (f"{request.method} {request.url}: {exc}", *exc.args[1:])
            raise

    def _send(self, request: httpx.Request) -> httpx.Response:
        first = self.state[0]
        count = len(self.addresses)
        for attempt in range(count):
            index = (first + attempt) % count
            target = self.addresses[index]
            if count > 1:
                request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
                request.headers["Host"] = target.netloc.decode("ascii")
            try:
                response = self.inner.handle_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if attempt == count - 1:
                    raise
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                if attempt == count - 1 or not (self.retry_unsafe or request.method in IDEMPOTENT):
                    raise
            else:
                self.state[0] = index
                return response
            self.state[0] = (index + 1) % count
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def close(self) -> None:
        self.inner.close()


def _summary(details: Any, limit: int = 300) -> str:
    """What an error's details name, for its message: `` (port: Must be an integer from 1 to
    65535.)``, so that a traceback says which field was refused."""
    if not details:
        return ""
    if isinstance(details, dict):
        parts = []
        for key, value in details.items():
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                value = " ".join(value)
            elif not isinstance(value, str):
                value = json.dumps(value, default=str)
            parts.append(f"{key}: {value}")
        text = "; ".join(parts)
    else:
        text = json.dumps(details, default=str)
    return f" ({text if len(text) <= limit else text[: limit - 3] + '...'})"


class PlatformError(Exception):
    """An error answer from the platform, in its ``{"error": {code, message, details}}`` shape."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}{_summary(details)}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        #: The seconds the platform asked to wait before the call is sent again (a 429's or a
        #: 503's ``Retry-After``), or None.
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> PlatformError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if isinstance(error, dict):
            return cls(
                response.status_code,
                error.get("code", "error"),
                error.get("message", ""),
                error.get("details"),
                retry_after=retry_after,
            )
        if isinstance(error, str):  # OAuth2 endpoints answer as RFC 6749 says
            return cls(
                response.status_code, error, body.get("error_description", error), retry_after=retry_after
            )
        # not the platform's answer (a proxy's, or no platform at this path): say where it came from
        message = response.reason_phrase
        with contextlib.suppress(RuntimeError):  # a response made by hand has no request
            message += f" ({response.request.method} {response.request.url})"
        return cls(response.status_code, "http_error", message, retry_after=retry_after)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds only; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


#: What the token endpoint's RFC 6749 error codes mean for a client-credentials client, for the
#: answers that carry no description of their own.
TOKEN_ERRORS = {
    "invalid_client": "The platform does not know this client id and secret (PLATFORM_CLIENT_ID, "
    "PLATFORM_CLIENT_SECRET), or the account is disabled.",
    "invalid_scope": "A scope asked for is not one of the account's.",
    "unauthorized_client": "The account may not use the client-credentials grant.",
}


@dataclass
class ClientCredentials(httpx.Auth):
    """httpx auth flow: a cached client-credentials token, refreshed before expiry."""

    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ()
    timeout: float = 10.0
    #: Sends the token request (the session's failover over the same nodes); else ``httpx.post``.
    client: httpx.Client | None = field(default=None, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires_at: float = field(default=0.0, init=False, repr=False)
    _refresh_at: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    #: The last refusal, when it came (monotonic), until when it stands, and how many in a row.
    _refusal: tuple[PlatformError, float, float] | None = field(default=None, init=False, repr=False)
    _refusals: int = field(default=0, init=False, repr=False)

    def token(self, *, force: bool = False) -> str:
        """A valid access token, fetched when there is none or it is about to expire."""
        with self._lock:
            if force or self._token is None or time.time() >= self._refresh_at:
                self._held()
                self._fetch()
            assert self._token is not None
            return self._token

    def _held(self) -> None:
        """Raise the last refusal again while it stands (see ``REFUSAL_HOLD_SECONDS``)."""
        if self._refusal is None:
            return
        error, at, until = self._refusal
        now = time.monotonic()
        if now < until:
            message = f"{error.message} (refused {now - at:.0f} s ago; asked again in {until - now:.0f} s)"
            raise PlatformError(error.status, error.code, message, error.details, retry_after=until - now)

    def _refused(self, error: PlatformError) -> None:
        self._refusals += 1
        hold = min(REFUSAL_HOLD_SECONDS * 2 ** (self._refusals - 1), REFUSAL_HOLD_MAX_SECONDS)
        hold *= random.uniform(0.8, 1.2)
        if error.retry_after:
            hold = max(hold, error.retry_after)
        now = time.monotonic()
        self._refusal = (error, now, now + hold)
        self._token = None  # refused since: calls raise the refusal rather than send it again

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        data = {"grant_type": "client_credentials"}
        if self.scopes:
            data["scope"] = " ".join(self.scopes)
        response = (self.client or httpx).post(
            self.token_url, data=data, auth=(self.client_id, self.client_secret), timeout=self.timeout
        )
        if response.status_code != 200:
            error = PlatformError.from_response(response)
            if error.code in TOKEN_ERRORS and error.message in ("", error.code):  # no description
                error = PlatformError(
                    error.status,
                    error.code,
                    TOKEN_ERRORS[error.code],
                    error.details,
                    retry_after=error.retry_after,
                )
            if response.status_code < 500:
                self._refused(error)
            raise error
        self._refusal, self._refusals = None, 0
        body = response.json()
        self._token = body["access_token"]
        lifetime = float(body.get("expires_in", 3600))
        self._expires_at = time.time() + lifetime
        self._refresh_at = self._expires_at - min(REFRESH_MARGIN_SECONDS, lifetime / 2)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(force=True)}"
            yield request


def token_refused(credentials: ClientCredentials, exc: BaseException) -> bool:
    """Whether a websocket was closed 4401 (its token expired or was revoked meanwhile); if so
    the token is dropped, so the next connection fetches a new one instead of the refused one."""
    received = getattr(exc, "rcvd", None)
    if received is not None and received.code == 4401:
        credentials.invalidate()
        return True
    return False


class PlatformSession(httpx.Client):
    """An HTTP client for the platform's API, authenticated as one service account."""

    def __init__(
        self,
        base_url: str | list[str] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: list[str] | tuple[str, ...] | None = None,
        *,
        timeout: float = 10.0,
        ws_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        addresses = platform_urls(base_url)
        base_url = addresses[0]
        state = [0]
        #: The node requests go to, and the others to fail over to.
        self.failover = Failover(addresses, state)
        #: Where websockets are served when not at ``base_url`` (``platform serve --ws-port``).
        self.ws_url = ws_url or os.environ.get("PLATFORM_WS_URL") or None
        client_id = client_id or os.environ.get("PLATFORM_CLIENT_ID", "")
        client_secret = client_secret or os.environ.get("PLATFORM_CLIENT_SECRET", "")
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required (or PLATFORM_CLIENT_ID/_SECRET)")
        if scopes is None:
            scopes = os.environ.get("PLATFORM_SCOPES", "").split()
        self.credentials = ClientCredentials(
            token_url=f"{base_url}/o/token/",
            client_id=client_id,
            client_secret=client_secret,
            scopes=tuple(scopes),
            timeout=timeout,
            client=httpx.Client(transport=Failover(addresses, state), timeout=timeout),
        )
        kwargs.setdefault("transport", self.failover)
        super().__init__(base_url=base_url, auth=self.credentials, timeout=timeout, **kwargs)

    def websocket_url(self, path: str) -> str:
        """The address of the websocket endpoint ``path`` (``/ws/events/``): under ``ws_url`` /
        ``$PLATFORM_WS_URL`` when set, else under the API's own address."""
        parts = urlsplit(self.ws_url or str(self.failover.current.copy_with(path=self.base_url.path)))
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))

    def close(self) -> None:
        super().close()
        if self.credentials.client is not None:
            self.credentials.client.close()

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body; an error answer raises ``PlatformError``."""
        response = self.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise PlatformError.from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
