"""The router dashboard: services, a service's nodes (weights, health, ejections and reasons),
its decision history, labels and rules (create, edit, delete) and the dry-run switch, live."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from rest_framework import serializers

from discovery_app import selectors as discovery
from platformsite.api.errors import PlatformError
from platformsite.api.validators import parse_flag
from platformsite.web import staff_required
from router_app import selectors, services
from router_app.api import serializers as io
from router_app.models import Label, NodeState, Policy, RateLimit, Rule

MAX_SERVICES = 500
KINDS = {
    "label": (Label, io.RouterLabelInput, services.label_save),
    "rule": (Rule, io.RouterRuleInput, services.rule_save),
}


def _page(request: HttpRequest, template: str, fragment: str, context: dict[str, Any]) -> HttpResponse:
    if request.GET.get("fragment") == "1":
        return render(request, fragment, context)
    return render(request, template, context)


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    names = set(discovery.listed_service_names().values_list("name", flat=True)[:MAX_SERVICES])
    policies = {p.service: p for p in Policy.objects.all()[:MAX_SERVICES]}
    counts = {
        row["service"]: row
        for row in NodeState.objects.values("service").annotate(
            nodes=Count("id"), ejected=Count("id", filter=Q(ejected=True))
        )
    }
    rows = []
    for name in sorted(names | set(policies))[:MAX_SERVICES]:
        policy = policies.get(name)
        rows.append(
            {
                "name": name,
                "enforce": policy.enforce if policy else True,
                "evaluated": selectors.iso(policy.evaluated) if policy else None,
                "nodes": counts.get(name, {}).get("nodes", 0),
                "ejected": counts.get(name, {}).get("ejected", 0),
                "registered": name in names,
            }
        )
    return _page(request, "router_app/index.html", "router_app/_services.html", {"services": rows})


def _form_int(raw: str) -> Any:
    """A form's whole number as a number, or the text as sent (refused by the serializer)."""
    try:
        return int(raw)
    except ValueError:
        return raw


def _form_values(kind: str, data: Any, service: str) -> dict[str, Any]:
    """A label's or rule's fields from a form, checked like the API's (ValidationError otherwise)."""
    fields: dict[str, Any] = {name: data.get(name, "") for name in ("version", "key", "value")}
    for name in ("weight", "priority"):  # a form's numbers are text; the API takes JSON numbers only
        fields[name] = _form_int(data.get(name, ""))
    serializer = KINDS[kind][1](data={**fields, "service": service})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _act(request: HttpRequest, name: str) -> None:
    action = request.POST.get("action", "")
    if action == "enforce":
        enforce = parse_flag(request.POST, "enforce")  # true or false: "maybe" is refused
        services.policy_update(service=name, values={"enforce": enforce})
        messages.success(request, f"Decisions are {'applied' if enforce else 'recorded only (dry run)'}.")
        return
    kind, _, verb = action.partition("_")
    if kind not in KINDS or verb not in {"create", "update", "delete"}:
        raise Http404(action)
    model, _, save = KINDS[kind]
    row = None
    if verb != "create":
        row = services.get_or_404(model, request.POST.get("id"))
        if row.service != name:
            raise Http404(str(row.pk))
    if verb == "delete":
        pk = row.pk  # delete() clears it
        (services.label_delete if kind == "label" else services.rule_delete)(**{kind: row})
        messages.success(request, f"The {kind} #{pk} is deleted.")
        return
    values = _form_values(kind, request.POST, name)
    saved = save(**({kind: row} if row else {}), **values)
    messages.success(request, f"The {kind} #{saved.pk} is saved.")


@staff_required
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    if not services.SERVICE.matches(name) or not selectors.service_known(name):
        raise Http404(name)  # as the API: a typo makes no service (the dry-run switch would store one)
    if request.method == "POST":
        try:
            _act(request, name)
        except PlatformError as exc:
            messages.error(request, str(exc))
        except serializers.ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(map(str, errors))}" for field, errors in exc.detail.items()
            )
            messages.error(request, f"Not saved: {problems}")
        return redirect("ui:router:service", name)
    decisions = selectors.decisions(name)
    states = {state["node"]: state for state in decisions["nodes"]}
    document = selectors.routes_document(name)
    versions = []
    for version in document["versions"] if document else []:
        versions.append(
            {
                "version": version["version"],
                "nodes": [{**node, "stats": states.get(node["id"])} for node in version["nodes"]],
            }
        )
    context = {
        "name": name,
        "registered": document is not None,
        "decisions": decisions,
        "versions": versions,
        "labels": [selectors.label_data(label) for label in Label.objects.filter(service=name)],
        "rules": [
            selectors.rule_data(rule)
            for rule in Rule.objects.filter(service=name).order_by("-priority", "id")
        ],
        "rate_limits": list(RateLimit.objects.filter(service=name).order_by("caller")),
    }
    return _page(request, "router_app/service.html", "router_app/_live.html", context)
