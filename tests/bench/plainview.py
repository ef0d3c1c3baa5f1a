"""The hot path's alternative, measured side by side: plain Django views with a warm-token decorator.

This module is at once the settings module and the URLconf of the platform server in
``make bench``: the platform's own settings and URLs, plus, at the end of the URLconf, the
warm config read served by a plain Django function view (no DRF) behind one decorator that
takes the token from this process's cache.  The view calls the hot route's own handler, so the
two scenarios differ only in the stack around it: the hot path's WSGI wrapper against Django's
URL resolving, middleware chain, request signals and response object.  A call the decorator
cannot answer warm goes to the full DRF view, as a hot-path miss does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.urls import path

from platformsite.settings import *  # noqa: F403  (the platform's settings, unchanged)

ROOT_URLCONF = __name__


def warm_token(scope: str, fallback: Callable[..., HttpResponse]) -> Callable:
    """Answer with ``view(request, token, **kwargs)`` when the bearer token is warm and holds
    ``scope`` and the view answers; else ``fallback`` (the full view) does."""
    from auth_app.access import cached_bearer

    def decorate(view: Callable[..., HttpResponse | None]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, **kwargs: str) -> HttpResponse:
            scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
            token = cached_bearer(raw.strip()) if scheme.lower() == "bearer" and raw else None
            if token is not None and token.has_scope(scope):
                response = view(request, token, **kwargs)
                if response is not None:
                    return response
            return fallback(request, **kwargs)

        return wrapped

    return decorate


def _urlpatterns() -> list:
    from config_app import hot
    from config_app.api.views import ResolveView
    from platformsite.hotpath import HotRequest
    from platformsite.urls import urlpatterns as platform_urlpatterns

    @warm_token("config:read", ResolveView.as_view())
    def resolve(request: HttpRequest, token, ns: str) -> HttpResponse | None:
        args = {"ns": ns, **({"env": request.GET["env"]} if "env" in request.GET else {})}
        answer = hot.resolve(HotRequest(request.META, args, token))
        if answer is None:
            return None
        response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
        for name, value in answer.headers:
            response[name] = value
        return response

    return [*platform_urlpatterns, path("bench/plain/config/namespaces/<str:ns>/resolve", resolve)]


def __getattr__(name: str) -> list:
    """``urlpatterns``, built when Django first asks (this module is the settings too)."""
    if name == "urlpatterns":
        globals()["urlpatterns"] = patterns = _urlpatterns()
        return patterns
    raise AttributeError(name)
