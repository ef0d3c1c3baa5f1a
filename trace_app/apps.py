from platformsite import services


class TraceAppConfig(services.ServiceConfig):
    name = "trace_app"
    service = "trace"
    verbose_name = "Distributed tracing: spans, traces, dependencies"
    built = False
    ingest_paths = ("/v1/traces", "/api/v2/spans", "/api/v1/trace/")
