"""The monitor service's REST API: node reports, checks, services, history, maintenance, keys.

Policy resources are ``monitor:<service>``: a report, a check, a window or a key of service S
needs the caller to be allowed on ``monitor:S``.  Job pings are not here: they are answered at
``/ping/...`` (:mod:`monitor_app.api.pings`), authenticated by the key in their URL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.access import actor
from monitor_app import selectors, services
from monitor_app.api import serializers as io
from monitor_app.api.filters import CheckFilter, FlipFilter
from monitor_app.models import Check, Flip, Maintenance, PingKey, ServiceHealth
from monitor_app.services.alerts import flip_data
from monitor_app.services.jobs import pings_kept
from monitor_app.services.names import JOB_SLUG, NODE_NAME, SERVICE_NAME
from platformsite.api.errors import Invalid, NotFound
from platformsite.api.filters import filter_parameters, filtered
from platformsite.api.schema import ERROR
from platformsite.api.views import ServiceView, validated


def resource(service: str) -> str:
    return f"monitor:{service}"


def body_service(request: Request) -> tuple[str, ...]:
    """The resource a body's ``service`` names (a name no rule can hold is refused later, 400)."""
    name = request.data.get("service") if isinstance(request.data, dict) else None
    return (resource(name),) if SERVICE_NAME.matches(name) else ()


class MonitorView(ServiceView):
    service = "monitor"

    def readable(self, request: Request) -> Callable[[str], bool]:
        """``service name -> bool``: may the caller read that service's rows (lists skip the others)?"""
        allows = self.allows(request, "read")
        return lambda name: allows(resource(name))


class PingView(APIView):
    """Answers at once: a client's check that the platform is reachable and its token works."""

    service = "monitor"
    pagination_class = None

    @extend_schema(
        responses=inline_serializer(
            "Pong",
            {
                "ok": serializers.BooleanField(),
                "time": serializers.FloatField(),
                "request_id": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "ok": True,
                "time": round(time.time(), 3),
                "request_id": getattr(request._request, "request_id", ""),
            }
        )


# --- reports ---------------------------------------------------------------------------------------


class ReportView(MonitorView):
    """One node's report: check results, its status, its process stats."""

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request)

    @extend_schema(request=io.MonitorReportInput, responses=io.MonitorReportOutput)
    def post(self, request: Request) -> Response:
        report = services.parse_report(request.data)
        answer = services.reports_ingest(reports=[report], now=time.time())[0]
        return Response(io.MonitorReportOutput(answer).data)


class BatchReportView(MonitorView):
    """Several reports in one call (an agent reporting the nodes of its host)."""

    def resources(self, request: Request, **kwargs: Any):
        reports = request.data.get("reports") if isinstance(request.data, dict) else None
        if not isinstance(reports, list):
            raise Invalid(
                "reports: A list of reports.", code="invalid_report", details={"reports": "A list."}
            )
        names = {
            r.get("service") for r in reports if isinstance(r, dict) and isinstance(r.get("service"), str)
        }
        return sorted(resource(n) for n in names if SERVICE_NAME.matches(n))

    @extend_schema(request=io.MonitorBatchInput, responses=io.MonitorBatchOutput)
    def post(self, request: Request) -> Response:
        from django.conf import settings

        parsed = services.parse_batch(request.data, settings.MONITOR_MAX_BATCH)
        answers = services.reports_ingest(reports=parsed, now=time.time())
        return Response(io.MonitorBatchOutput({"reports": answers}).data)


# --- services ----------------------------------------------------------------------------------------


class ServiceListView(MonitorView):
    """The fleet: every service with its health, node counts and checks by state (by name)."""

    @extend_schema(responses=io.MonitorServiceOutput(many=True))
    def get(self, request: Request) -> Response:
        readable = self.readable(request)
        return self.paginate(
            ServiceHealth.objects.all(),
            ordering="name",
            render=lambda rows: (
                io.MonitorServiceOutput(
                    selectors.services_overview([r.name for r in rows if readable(r.name)]), many=True
                ).data
            ),
        )


def monitored(name: str) -> bool:
    """Whether the monitor knows ``name``: a node has reported it, or it has a job."""
    return ServiceHealth.objects.filter(name=name).exists() or Check.objects.filter(service=name).exists()


class ServiceLookup(MonitorView):
    def resources(self, request: Request, name: str, **kwargs: Any):
        if not SERVICE_NAME.matches(name):
            raise NotFound(f"No service {name[:80]!r} is monitored.", code="service_not_found")
        return (resource(name),)

    def found(self, name: str) -> None:
        if not monitored(name):
            raise NotFound(f"No service {name!r} is monitored.", code="service_not_found")


class ServiceDetailView(ServiceLookup):
    """A service: health, nodes with their checks (last output, age, thresholds), jobs."""

    @extend_schema(responses=io.MonitorServiceDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        detail = selectors.service_detail(name)
        if detail is None:
            raise NotFound(f"No service {name!r} is monitored.", code="service_not_found")
        return Response(io.MonitorServiceDetailOutput(detail).data)

    @extend_schema(request=io.MonitorServiceUpdateInput, responses=io.MonitorServiceOutput)
    def patch(self, request: Request, name: str) -> Response:
        if not isinstance(request.data, dict):
            raise Invalid("A JSON object.", code="invalid_service")
        validated(io.MonitorServiceUpdateInput, request.data)
        self.found(name)  # a typo must not make a service of its own
        services.service_settings(name=name, fields=dict(request.data), now=time.time())
        return Response(io.MonitorServiceOutput(selectors.services_overview([name])[0]).data)


class ServiceFlipsView(ServiceLookup):
    """The service's flips and its checks' flips, newest first."""

    @extend_schema(parameters=filter_parameters(FlipFilter), responses=io.MonitorFlipOutput(many=True))
    def get(self, request: Request, name: str) -> Response:
        self.found(name)
        flips = filtered(FlipFilter, request, Flip.objects.filter(service=name))
        return self.paginate(flips, ordering="-id", render=lambda rows: [flip_data(f) for f in rows])


def months_param(request: Request) -> int:
    raw = request.query_params.get("months", "3")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 24:  # str.isdigit also takes "²"
        raise Invalid("months is 1-24.", code="invalid_months", details={"months": raw[:10]})
    return int(raw)


MONTHS = OpenApiParameter(
    "months", int, description="How many months, the current one last (1-24, default 3)."
)


class ServiceUptimeView(ServiceLookup):
    """Monthly uptime of a service (time not degraded)."""

    pagination_class = None

    @extend_schema(parameters=[MONTHS], responses=io.MonitorUptimeOutput)
    def get(self, request: Request, name: str) -> Response:
        months = months_param(request)
        self.found(name)
        data = services.history.service_uptime(name, now=timezone.now(), months=months)
        return Response(io.MonitorUptimeOutput({"months": data}).data)


# --- checks --------------------------------------------------------------------------------------------


class CheckListView(MonitorView):
    """Checks, filtered by service, node, state (by service, node, name); POST adds a job check."""

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request) if request.method == "POST" else ()

    @extend_schema(parameters=filter_parameters(CheckFilter), responses=io.MonitorCheckOutput(many=True))
    def get(self, request: Request) -> Response:
        checks = filtered(CheckFilter, request, Check.objects.all())
        readable = self.readable(request)
        return self.paginate(
            checks,
            ordering="id",
            render=lambda rows: selectors.checks_rendered([c for c in rows if readable(c.service)]),
        )

    @extend_schema(request=io.MonitorJobCreateInput, responses={201: io.MonitorCheckOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise Invalid("A JSON object.", code="invalid_check")
        fields = dict(data)
        service, name = fields.pop("service", None), fields.pop("name", None)
        SERVICE_NAME.check(service, "service")
        JOB_SLUG.check(name, "name")
        extra = sorted(set(fields) - {*io.MonitorJobCreateInput().fields})
        if extra:
            raise Invalid(
                f"Unknown fields: {', '.join(extra)}.", code="invalid_field", details={"fields": extra}
            )
        check = services.job_create(service=service, name=name, fields=fields)
        ServiceHealth.objects.get_or_create(name=service)
        return Response(selectors.checks_rendered([check])[0], status=status.HTTP_201_CREATED)


class CheckLookup(MonitorView):
    def resources(self, request: Request, check_id: uuid.UUID, **kwargs: Any):
        self.check_row = Check.objects.filter(pk=check_id).first()
        if self.check_row is None:
            raise NotFound(f"No check {check_id}.", code="check_not_found")
        return (resource(self.check_row.service),)


class CheckDetailView(CheckLookup):
    """One check: read it, change its settings, delete it."""

    @extend_schema(responses=io.MonitorCheckOutput)
    def get(self, request: Request, check_id: uuid.UUID) -> Response:
        return Response(selectors.checks_rendered([self.check_row])[0])

    @extend_schema(request=io.MonitorCheckUpdateInput, responses=io.MonitorCheckOutput)
    def patch(self, request: Request, check_id: uuid.UUID) -> Response:
        if not isinstance(request.data, dict):
            raise Invalid("A JSON object.", code="invalid_check")
        check = services.check_update(check=self.check_row, fields=dict(request.data), now=time.time())
        return Response(selectors.checks_rendered([check])[0])

    @extend_schema(responses={204: None})
    def delete(self, request: Request, check_id: uuid.UUID) -> Response:
        services.check_delete(check=self.check_row, now=time.time())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CheckFlipsView(CheckLookup):
    """A check's flips (its status history), newest first."""

    @extend_schema(parameters=filter_parameters(FlipFilter), responses=io.MonitorFlipOutput(many=True))
    def get(self, request: Request, check_id: uuid.UUID) -> Response:
        flips = filtered(FlipFilter, request, Flip.objects.filter(check_ref=self.check_row))
        return self.paginate(flips, ordering="-id", render=lambda rows: [flip_data(f) for f in rows])


class CheckUptimeView(CheckLookup):
    """Monthly uptime of a check (time not critical)."""

    pagination_class = None

    @extend_schema(parameters=[MONTHS], responses=io.MonitorUptimeOutput)
    def get(self, request: Request, check_id: uuid.UUID) -> Response:
        data = services.history.check_uptime(self.check_row, now=timezone.now(), months=months_param(request))
        return Response(io.MonitorUptimeOutput({"months": data}).data)


class CheckPingsView(CheckLookup):
    """A job check's pings, newest first."""

    @extend_schema(responses=io.MonitorPingOutput(many=True))
    def get(self, request: Request, check_id: uuid.UUID) -> Response:
        return self.paginate(pings_kept(self.check_row), ordering="-id", serializer=io.MonitorPingOutput)


class FlipListView(MonitorView):
    """Flips across the fleet, newest first (``?service=`` narrows)."""

    @extend_schema(parameters=filter_parameters(FlipFilter), responses=io.MonitorFlipOutput(many=True))
    def get(self, request: Request) -> Response:
        flips = filtered(FlipFilter, request, Flip.objects.all())
        readable = self.readable(request)
        return self.paginate(
            flips, ordering="-id", render=lambda rows: [flip_data(f) for f in rows if readable(f.service)]
        )


# --- maintenance, keys, stats ----------------------------------------------------------------------------


class MaintenanceListView(MonitorView):
    """Maintenance windows (newest first); POST opens one for a service or one of its checks."""

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request) if request.method == "POST" else ()

    @extend_schema(responses=io.MonitorMaintenanceOutput(many=True))
    def get(self, request: Request) -> Response:
        readable = self.readable(request)
        return self.paginate(
            Maintenance.objects.all(),
            ordering="-id",
            render=lambda rows: (
                io.MonitorMaintenanceOutput([w for w in rows if readable(w.service)], many=True).data
            ),
        )

    @extend_schema(request=io.MonitorMaintenanceInput, responses={201: io.MonitorMaintenanceOutput})
    def post(self, request: Request) -> Response:
        data = validated(io.MonitorMaintenanceInput, request.data)
        service = SERVICE_NAME.check(data["service"], "service")
        if not monitored(service):  # a typo would silence nothing, and the operator would not know
            raise Invalid(
                f"No service {service!r} is monitored: a window for it would silence nothing.",
                code="service_not_found",
                details={"service": service},
            )
        check = None
        if data.get("check"):
            check = Check.objects.filter(pk=data["check"], service=service).first()
            if check is None:
                raise Invalid(
                    "No such check in this service.",
                    code="check_not_found",
                    details={"check": str(data["check"])},
                )
        window = services.maintenance_create(
            service=service,
            check=check,
            starts=data.get("starts") or timezone.now(),
            ends=data["ends"],
            reason=data.get("reason", ""),
            actor=actor(request),
        )
        return Response(io.MonitorMaintenanceOutput(window).data, status=status.HTTP_201_CREATED)


class MaintenanceDetailView(MonitorView):
    """One window: read it; DELETE ends it now."""

    def resources(self, request: Request, pk: int, **kwargs: Any):
        self.window = Maintenance.objects.filter(pk=pk).first()
        if self.window is None:
            raise NotFound(f"No maintenance window {pk}.", code="maintenance_not_found")
        return (resource(self.window.service),)

    @extend_schema(responses=io.MonitorMaintenanceOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(io.MonitorMaintenanceOutput(self.window).data)

    @extend_schema(responses=io.MonitorMaintenanceOutput)
    def delete(self, request: Request, pk: int) -> Response:
        window = services.maintenance_end(window=self.window, now=timezone.now())
        return Response(io.MonitorMaintenanceOutput(window).data)


class PingKeyListView(MonitorView):
    """Ping keys (secrets: listing them needs monitor:write); POST makes one for a service."""

    required_scopes = {"GET": "monitor:write", "POST": "monitor:write"}

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request) if request.method == "POST" else ()

    @extend_schema(responses=io.MonitorPingKeyOutput(many=True))
    def get(self, request: Request) -> Response:
        keys = PingKey.objects.all()
        allowed = self.allows(request, "write")
        return self.paginate(
            keys,
            ordering="id",
            render=lambda rows: (
                io.MonitorPingKeyOutput([k for k in rows if allowed(resource(k.service))], many=True).data
            ),
        )

    @extend_schema(request=io.MonitorPingKeyInput, responses={201: io.MonitorPingKeyOutput})
    def post(self, request: Request) -> Response:
        data = validated(io.MonitorPingKeyInput, request.data)
        service = SERVICE_NAME.check(data["service"], "service")
        key = services.key_create(service=service, actor=actor(request))
        return Response(io.MonitorPingKeyOutput(key).data, status=status.HTTP_201_CREATED)


def parse_time(raw: str | None, name: str, default: datetime) -> datetime:
    if not raw:
        return default
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(
            f"{name} is an ISO 8601 time.", code=f"invalid_{name}", details={name: raw[:40]}
        ) from None


class StatsView(MonitorView):
    """Stats of a service (or one node) as a time series: CPU, memory, request and error rates."""

    pagination_class = None

    def resources(self, request: Request, **kwargs: Any):
        name = request.query_params.get("service")
        if not SERVICE_NAME.matches(name):
            raise Invalid("service is required: " + SERVICE_NAME.hint + ".", code="invalid_service")
        return (resource(name),)

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str, required=True),
            OpenApiParameter("node", str),
            OpenApiParameter("since", str, description="ISO 8601; default an hour ago."),
            OpenApiParameter("until", str, description="ISO 8601; default now."),
        ],
        responses=io.MonitorStatsOutput,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        now = timezone.now()
        since = parse_time(params.get("since"), "since", now - timedelta(hours=1))
        until = parse_time(params.get("until"), "until", now)
        node = params.get("node") or None
        if node is not None:  # no other node is stored, and PostgreSQL refuses a NUL in a query
            NODE_NAME.check(node, "node")
        series = selectors.stats_series(service=params["service"], node=node, since=since, until=until)
        return Response(io.MonitorStatsOutput(series).data)


__all__ = ["PingView"]
