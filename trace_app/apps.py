from platformsite import services


class TraceAppConfig(services.ServiceConfig):
    name = "trace_app"
    service = "trace"
    verbose_name = "Distributed tracing: spans, traces, dependencies"
    root_urls = "root_urls"
    web_urls = "web_urls"
    websocket_routes = "routing"
    ingest_paths = ("/v1/traces", "/api/v2/spans")
    #: Keep rules decide what every service's spans become: not the scope every exporter holds.
    extra_scopes = {"trace:manage": "Keep rules: the share of traces kept, and for how long"}
    beat_schedule = {
        "trace-partitions": {"task": "trace_app.tasks.ensure_partitions", "schedule": 3600},
        "trace-expire": {"task": "trace_app.tasks.expire_spans", "schedule": 3600},
    }

    def ready(self) -> None:
        super().ready()
        from django.conf import settings

        if settings.PLATFORM_SELF_TRACE:
            from platformsite import observers
            from trace_app.selftrace import tracer

            observers.add(tracer.observe)
