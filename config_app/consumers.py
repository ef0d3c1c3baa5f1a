"""``/ws/config/``: subscribe to (namespace, env) pairs and receive each new resolved document.

Client messages: ``{"type": "subscribe"|"unsubscribe", "namespace", "env"}`` and ``{"type": "ping"}``.
Server messages: ``{"type": "config", "namespace", "env", "revision", "revisions", "data"}`` at
subscription and after every change, ``{"type": "error", "code", "message", ...}``.  The service
sends one group message per change to the namespace's group (``global``'s to every watcher);
each consumer resolves from the shared cache, so this works across nodes with channels-redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async

from auth_app.access import PolicyError, TokenInfo, is_allowed
from config_app import sealing, selectors
from config_app.api.views import SECRETS_SCOPE
from config_app.errors import ConfigError
from config_app.models import DEFAULT_ENV, GLOBAL
from config_app.services import group_name
from platformsite import localstate
from platformsite.api.validators import SLUG
from platformsite.consumers import ServiceConsumer

MAX_SUBSCRIPTIONS = 100
#: The resolutions of one change, shared by every consumer of this process that watches the same
#: (namespace, env): one resolution per change and process, not one per connection.  Kept as
#: tasks, so consumers that hear of the change while it is being resolved wait for that one
#: resolution (database work runs on one thread: 200 resolutions queued there cost 200 ms).
_shared: dict[tuple, asyncio.Task] = {}
MAX_SHARED = 1000
_stats = localstate.register_cache("config.ws_resolutions", size=lambda: len(_shared), reset=_shared.clear)


@database_sync_to_async
def _allowed(token: TokenInfo | None, resource: str) -> bool:
    account_id, scopes = (token.account_id, token.scopes) if token else (None, frozenset({"admin"}))
    try:
        return is_allowed(account_id=account_id, scopes=scopes, resource=resource, action="read").allowed
    except PolicyError:
        return False


@database_sync_to_async
def _resolve(namespace: str, env: str, secrets: bool) -> dict[str, Any]:
    resolved = selectors.resolve(namespace, env, fresh=True)
    data = sealing.reveal(resolved.data) if secrets and resolved.has_secrets else sealing.mask(resolved.data)
    body = resolved.body(data)
    body.pop("etag")
    return {"type": "config", **body}


class ConfigConsumer(ServiceConsumer):
    service = "config"

    async def on_connected(self) -> None:
        self.subscriptions: dict[tuple[str, str], int] = {}
        self.groups: set[str] = set()
        await self.send_json({"type": "hello", "subject": self.subject})

    @property
    def secrets(self) -> bool:
        return self.granted(SECRETS_SCOPE)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str):
            kind = None
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        if kind not in {"subscribe", "unsubscribe"}:
            await self.error("invalid", "Send subscribe, unsubscribe or ping messages.")
            return
        namespace, env = content.get("namespace"), content.get("env") or DEFAULT_ENV
        if not (SLUG.matches(namespace) and SLUG.matches(env)):
            await self.error(
                "invalid", "namespace and env must be valid names.", namespace=namespace, env=env
            )
            return
        if kind == "unsubscribe":
            self.subscriptions.pop((namespace, env), None)
            await self.send_json({"type": "unsubscribed", "namespace": namespace, "env": env})
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self.error("too_many", f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection.")
            return
        if not await _allowed(self.scope.get("token"), f"config:{namespace}/{env}"):
            await self.error(
                "policy_denied", "Policy does not allow reading this.", namespace=namespace, env=env
            )
            return
        for group in {group_name(GLOBAL), group_name(namespace)} - self.groups:
            await self.join(group)
            self.groups.add(group)
        try:
            message = await _resolve(namespace, env, self.secrets)
        except ConfigError as exc:
            await self.error(exc.code, str(exc), namespace=namespace, env=env)
            return
        self.subscriptions[(namespace, env)] = message["revision"]
        await self.send_json(message)

    async def config_changed(self, event: dict[str, Any]) -> None:
        """A layer changed: push the new resolved document to the subscriptions it affects."""
        changed_ns, changed_env = event["namespace"], event["env"]
        for namespace, env in list(self.subscriptions):
            if changed_ns not in {GLOBAL, namespace} or changed_env not in {DEFAULT_ENV, env}:
                continue
            key = (event.get("change"), namespace, env, self.secrets)
            resolution = _shared.get(key) if key[0] else None
            if resolution is not None:
                _stats.hits += 1
            else:
                _stats.misses += 1
                resolution = asyncio.ensure_future(_resolve(namespace, env, self.secrets))
                if key[0]:
                    if len(_shared) >= MAX_SHARED:
                        _shared.clear()
                    _shared[key] = resolution
            try:
                # Shielded: a consumer that disconnects meanwhile must not cancel it for the others.
                message = await asyncio.shield(resolution)
            except ConfigError:
                continue
            if (namespace, env) in self.subscriptions and message["revision"] != self.subscriptions[
                (namespace, env)
            ]:
                self.subscriptions[(namespace, env)] = message["revision"]
                await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups", ()):
            await self.leave(group)
