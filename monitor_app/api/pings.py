"""Job pings, Healthchecks.io's contract: ``HEAD|GET|POST /ping/<id>[/start|/fail|/log|/<exit>]``
and ``/ping/<key>/<slug>[...][?create=1]``, with ``?rid=<uuid>`` pairing a start with its end.

These URLs carry no bearer token: the check's id (a random UUID) or the service's ping key is
the secret, as in Healthchecks.io, so a cron line needs nothing but ``curl``.  They are rate
limited per client address (``MONITOR_PING_RATE``) and per check (``MONITOR_PING_CHECK_RATE``).
Answers: ``200 OK`` (text), 404 for an unknown check or key, 400 for a bad exit status or rid,
429 past a rate limit; errors in the platform's error shape.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from monitor_app import services
from monitor_app.models import Check, PingKey
from monitor_app.services.jobs import job_cached, parse_action, parse_rid
from monitor_app.services.names import JOB_SLUG, PING_KEY
from platformsite.api.errors import NotFound, json_error
from platformsite.api.schema import ERROR
from platformsite.api.throttling import wait_seconds

BODY_LIMIT_HEADER = "Ping-Body-Limit"


class PingThrottle(BaseThrottle):
    """Per client address; the limit per check is the view's, once it knows the check
    (:func:`check_throttle`), so every URL that names it (its id in any case, its key and slug)
    counts against one budget."""

    def __init__(self) -> None:
        self.wait_for: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        self.wait_for = wait_seconds("monitor_ping", self.get_ident(request), settings.MONITOR_PING_RATE)
        return self.wait_for is None

    def wait(self) -> float | None:
        return self.wait_for


def check_throttle(check: Check) -> float | None:
    """Seconds to wait before ``check`` takes another ping, or None (this one is counted)."""
    return wait_seconds("monitor_ping_check", str(check.pk), settings.MONITOR_PING_CHECK_RATE)


ANSWERS = {
    (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="OK"),
    (201, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Created (by ?create=1)"),
    400: ERROR,
    404: ERROR,
    429: ERROR,
}
RID = OpenApiParameter(
    "rid", OpenApiTypes.UUID, description="Pairs a start with its end (run time measured)."
)
CREATE = OpenApiParameter("create", int, description="1: create the job check if the slug is new.")


class PingBase(APIView):
    """A job's ping.  No bearer token: the id or key in the URL is the secret."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes = [PingThrottle]
    pagination_class = None

    def check_for(self, request: Request, **kwargs: Any) -> tuple[Check, bool]:
        """The job pinged, and whether the ping created it (Healthchecks.io answers 201 then)."""
        raise NotImplementedError

    def ping(self, request: Request, action: str | None = None, **kwargs: Any) -> HttpResponse:
        check, created = self.check_for(request, **kwargs)  # an unknown check is 404 before all else
        wait = check_throttle(check)
        if wait is not None:
            raise Throttled(wait)
        kind, exit_status = parse_action(action)
        rid = parse_rid(request.query_params.get("rid"))
        limit = settings.MONITOR_PING_BODY_LIMIT
        body = (
            request.body[:limit].decode("utf-8", "replace").replace("\x00", "\ufffd")
            if request.method == "POST"
            else ""
        )
        meta = request.META
        services.ping_record(
            check=check,
            kind=kind,
            exit_status=exit_status,
            rid=rid,
            body=body,
            method=request.method,
            remote_addr=meta.get("REMOTE_ADDR", ""),
            user_agent=meta.get("HTTP_USER_AGENT", ""),
            now=time.time(),
        )
        response = (
            HttpResponse("Created", content_type="text/plain", status=201)
            if created
            else HttpResponse("OK", content_type="text/plain")
        )
        response[BODY_LIMIT_HEADER] = str(limit)
        return response

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return self.ping(request, **kwargs)

    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        return self.ping(request, **kwargs)

    def head(self, request: Request, **kwargs: Any) -> HttpResponse:
        return self.ping(request, **kwargs)


def _documented(cls: type[PingBase], parameters: list[OpenApiParameter]) -> type[PingBase]:
    """Give the view its own documented GET and POST (the base's are shared by both views)."""
    for method in ("get", "post"):

        def handler(self: PingBase, request: Request, **kwargs: Any) -> HttpResponse:
            return self.ping(request, **kwargs)

        handler.__name__ = method
        documented = extend_schema(
            operation_id=f"{cls.operation_name}_{method}",
            parameters=parameters,
            request={"text/plain": OpenApiTypes.STR} if method == "post" else None,
            responses=ANSWERS,
            auth=[],
            tags=["monitor"],
        )(handler)
        setattr(cls, method, documented)
    return cls


class PingByIdView(PingBase):
    operation_name = "ping_by_id"

    def check_for(self, request: Request, check_id: str, **kwargs: Any) -> tuple[Check, bool]:
        check = job_cached(check_id.lower())  # one cache entry whatever the id's case
        if check is None:
            raise NotFound("No job check with this id.", code="check_not_found")
        return check, False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class PingBySlugView(PingBase):
    operation_name = "ping_by_slug"

    def check_for(self, request: Request, key: str, slug: str, **kwargs: Any) -> tuple[Check, bool]:
        if not PING_KEY.matches(key) or not JOB_SLUG.matches(slug):
            raise NotFound("No such ping key or slug.", code="check_not_found")
        if _is_uuid(key) and not PingKey.objects.filter(key=key).exists():  # /ping/<check id>/<typo>
            raise NotFound(
                f"No ping action {slug!r}: after a check id come start, fail, log or an exit status 0-255.",
                code="check_not_found",
            )
        create = request.query_params.get("create") == "1"
        return services.job_by_slug(key=key, slug=slug, create=create)


_documented(PingByIdView, [RID])
_documented(PingBySlugView, [RID, CREATE])


@csrf_exempt
def no_such_ping(request: HttpRequest) -> JsonResponse:
    """A ``/ping/...`` URL of neither shape (not a UUID, a key too short, an upper-case slug)."""
    return json_error(404, "check_not_found", "No job check at this ping URL.", {"path": request.path[:200]})
