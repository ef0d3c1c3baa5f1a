"""The trace service's URLs at the site root, as outside tools expect them: OTLP/HTTP
``/v1/traces`` and Zipkin's ``/api/v2/``."""

from django.urls import path

from trace_app import ingest_views, zipkin_api

app_name = "trace_protocols"

urlpatterns = [
    path("v1/traces", ingest_views.OtlpTracesView.as_view(), name="otlp-traces"),
    path("api/v2/spans", ingest_views.ZipkinSpansView.as_view(), name="zipkin-spans"),
    path("api/v2/services", zipkin_api.ServicesView.as_view(), name="zipkin-services"),
    path("api/v2/remoteServices", zipkin_api.RemoteServicesView.as_view(), name="zipkin-remote-services"),
    path("api/v2/traces", zipkin_api.TracesView.as_view(), name="zipkin-traces"),
    path("api/v2/trace/<str:trace_id>", zipkin_api.TraceView.as_view(), name="zipkin-trace"),
    path("api/v2/traceMany", zipkin_api.TraceManyView.as_view(), name="zipkin-trace-many"),
    path("api/v2/dependencies", zipkin_api.DependenciesView.as_view(), name="zipkin-dependencies"),
    path(
        "api/v2/autocompleteKeys", zipkin_api.AutocompleteKeysView.as_view(), name="zipkin-autocomplete-keys"
    ),
    path(
        "api/v2/autocompleteValues",
        zipkin_api.AutocompleteValuesView.as_view(),
        name="zipkin-autocomplete-values",
    ),
]
