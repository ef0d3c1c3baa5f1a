"""Dashboard pages: the namespaces, and one page per namespace (resolved view, editor, history)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from config_app import selectors
from config_app.models import DEFAULT_ENV, GLOBAL, Layer, Namespace
from platformsite.api.validators import SLUG
from platformsite.services import service_by_name
from platformsite.web import staff_required


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    namespaces = list(Namespace.objects.all())
    if not any(ns.name == GLOBAL for ns in namespaces):
        namespaces.insert(0, Namespace(name=GLOBAL, description="Inherited by every namespace."))
    heads: dict[int, list[Layer]] = {}
    for layer in Layer.objects.order_by("env"):
        heads.setdefault(layer.namespace_id, []).append(layer)
    rows = [{"namespace": ns, "layers": heads.get(ns.pk, [])} for ns in namespaces]
    context = {
        "rows": rows,
        "service": service_by_name("config"),
        "api_root": reverse("config:root"),
        "scopes": ["config:read", "config:write", "config:secrets"],
    }
    return render(request, "config_app/index.html", context)


@staff_required
def namespace_page(request: HttpRequest, ns: str) -> HttpResponse:
    try:
        namespace = selectors.namespace_get(ns)
    except Exception as exc:
        raise Http404(ns) from exc
    layers = list(selectors.layers_of(namespace))
    envs = {DEFAULT_ENV} | {layer.env for layer in layers}
    asked = request.GET.get("env", "").strip()
    env_error = ""
    if asked and not SLUG.matches(asked):
        env_error = f"{asked[:80]!r} is not an environment name: {SLUG.hint}."
        asked = ""
    env = asked or next((e for e in sorted(envs) if e != DEFAULT_ENV), DEFAULT_ENV)
    # An environment with no layer yet is listed too: it resolves, and its first layer can be written.
    context = {
        "namespace": namespace,
        "envs": sorted(envs | {env}),
        "env": env,
        "env_error": env_error,
        # The script asks for a layer (and its history) only when it is written: no 404 to log.
        "written": sorted(layer.env for layer in layers if layer.head_id is not None),
    }
    return render(request, "config_app/namespace.html", context)
