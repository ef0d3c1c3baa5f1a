"""Input and output shapes of the monitor API (the rules themselves are in the services)."""

from __future__ import annotations

from rest_framework import serializers

from platformsite.api.validators import StrictBooleanField, StrictFloatField, StrictIntegerField

STATES = ["passing", "warning", "critical", "unknown"]


class MonitorFailureRateField(serializers.Serializer):
    window = StrictFloatField(help_text="Seconds.")
    threshold = StrictFloatField(help_text="Share of failures (0-1] that makes it critical.")
    min_samples = StrictIntegerField(required=False)


class MonitorFlapField(serializers.Serializer):
    window = StrictFloatField(help_text="Seconds.")
    max_transitions = StrictIntegerField(help_text="More flips than this in the window: flapping.")


class MonitorCheckResultInput(serializers.Serializer):
    """One check result; the definition fields are optional (the node's report keeps them set)."""

    name = serializers.CharField()
    status = serializers.CharField(help_text="passing, warning, critical, unknown (or OK, ERROR, UNKNOWN).")
    output = serializers.CharField(required=False, help_text="Cut to 4 KiB (and flagged truncated).")
    error = serializers.CharField(required=False, help_text="monitor-srv's name for output.")
    results = serializers.DictField(required=False)
    interval = StrictIntegerField(required=False)
    ttl = StrictIntegerField(required=False)
    description = serializers.CharField(required=False)
    critical = StrictBooleanField(required=False)
    failures_before_critical = StrictIntegerField(required=False)
    success_before_passing = StrictIntegerField(required=False)
    failure_rate = MonitorFailureRateField(required=False, allow_null=True)
    flap = MonitorFlapField(required=False, allow_null=True)
    depends_on = serializers.ListField(child=serializers.CharField(), required=False)
    remind_every = StrictIntegerField(required=False)


class MonitorNodeStatusInput(serializers.Serializer):
    status = serializers.CharField(help_text="UNKNOWN, STARTED, RUNNING or STOPPED.")
    info = serializers.DictField(required=False)
    interval = StrictIntegerField(required=False)
    ttl = StrictIntegerField(required=False)


class MonitorEndpointStatsInput(serializers.Serializer):
    method = serializers.CharField()
    success = StrictIntegerField(required=False)
    errors = StrictIntegerField(required=False)
    dropped = StrictIntegerField(required=False)


class MonitorStatsInput(serializers.Serializer):
    cpu = StrictFloatField(required=False)
    memory = StrictFloatField(required=False)
    disk = StrictFloatField(required=False)
    runtime = StrictFloatField(required=False)
    threads = StrictIntegerField(required=False)
    seconds = StrictFloatField(required=False, help_text="Seconds the endpoint counts cover.")
    interval = StrictFloatField(required=False, help_text="The same as seconds, under go-micro's name.")
    endpoints = MonitorEndpointStatsInput(many=True, required=False)


class MonitorReportInput(serializers.Serializer):
    service = serializers.CharField()
    node = serializers.CharField()
    checks = MonitorCheckResultInput(many=True, required=False)
    status = MonitorNodeStatusInput(required=False, allow_null=True)
    stats = MonitorStatsInput(required=False, allow_null=True)


class MonitorBatchInput(serializers.Serializer):
    reports = MonitorReportInput(many=True)


class MonitorCheckStateOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="passing, warning, critical or unknown.")
    changed = serializers.BooleanField(help_text="True when this result flipped the check.")


class MonitorReportOutput(serializers.Serializer):
    service = serializers.CharField()
    node = serializers.CharField()
    checks = MonitorCheckStateOutput(many=True)


class MonitorBatchOutput(serializers.Serializer):
    reports = MonitorReportOutput(many=True)


class MonitorCheckOutput(serializers.Serializer):
    id = serializers.CharField()
    service = serializers.CharField()
    node = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text="report, period or cron.")
    description = serializers.CharField()
    status = serializers.CharField(help_text="passing, warning, critical or unknown.")
    critical = serializers.BooleanField()
    output = serializers.CharField()
    truncated = serializers.BooleanField()
    results = serializers.DictField()
    last_report = serializers.CharField(allow_null=True)
    changed = serializers.CharField(allow_null=True)
    expires_at = serializers.CharField(allow_null=True)
    interval = serializers.IntegerField()
    ttl = serializers.IntegerField()
    schedule = serializers.CharField()
    timezone = serializers.CharField()
    failures_before_critical = serializers.IntegerField()
    success_before_passing = serializers.IntegerField()
    failure_rate = MonitorFailureRateField(allow_null=True)
    flap = MonitorFlapField(allow_null=True)
    depends_on = serializers.ListField(child=serializers.CharField())
    remind_every = serializers.IntegerField()
    flapping = serializers.BooleanField()
    alerting = serializers.BooleanField()


class MonitorJobCreateInput(serializers.Serializer):
    service = serializers.CharField()
    name = serializers.CharField(help_text="The slug in /ping/<key>/<slug>.")
    kind = serializers.ChoiceField(["period", "cron"], required=False)
    interval = StrictIntegerField(required=False, help_text="A period job's period, seconds.")
    ttl = StrictIntegerField(required=False, help_text="Grace time, seconds.")
    schedule = serializers.CharField(required=False)
    timezone = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    remind_every = StrictIntegerField(required=False)
    depends_on = serializers.ListField(child=serializers.CharField(), required=False)


class MonitorCheckUpdateInput(serializers.Serializer):
    description = serializers.CharField(required=False)
    critical = StrictBooleanField(required=False)
    interval = StrictIntegerField(required=False)
    ttl = StrictIntegerField(required=False)
    failures_before_critical = StrictIntegerField(required=False)
    success_before_passing = StrictIntegerField(required=False)
    failure_rate = MonitorFailureRateField(required=False, allow_null=True)
    flap = MonitorFlapField(required=False, allow_null=True)
    depends_on = serializers.ListField(child=serializers.CharField(), required=False)
    remind_every = StrictIntegerField(required=False)
    schedule = serializers.CharField(required=False)
    timezone = serializers.CharField(required=False)


class MonitorServiceOutput(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.CharField(help_text="healthy, degraded or unknown.")
    nodes = serializers.IntegerField()
    passing = serializers.IntegerField()
    min_share = serializers.FloatField(allow_null=True)
    remind_every = serializers.IntegerField()
    alerting = serializers.BooleanField()
    in_maintenance = serializers.BooleanField()
    changed = serializers.CharField(allow_null=True)
    checks = serializers.DictField(child=serializers.IntegerField(), help_text="Checks by state.")


class MonitorNodeStatusOutput(serializers.Serializer):
    status = serializers.CharField()
    info = serializers.DictField()
    reported = serializers.CharField()


class MonitorNodeOutput(serializers.Serializer):
    node = serializers.CharField()
    passing = serializers.BooleanField()
    status = MonitorNodeStatusOutput(allow_null=True)
    checks = MonitorCheckOutput(many=True)


class MonitorServiceDetailOutput(MonitorServiceOutput):
    members = MonitorNodeOutput(many=True, help_text="The nodes, each with its checks.")
    jobs = MonitorCheckOutput(many=True)


class MonitorServiceUpdateInput(serializers.Serializer):
    min_share = StrictFloatField(required=False, allow_null=True, help_text="Null: MONITOR_HEALTHY_SHARE.")
    remind_every = StrictIntegerField(required=False, help_text="Seconds between reminders while degraded.")


class MonitorFlipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    check = serializers.CharField(allow_null=True)
    service = serializers.CharField()
    node = serializers.CharField()
    name = serializers.CharField()
    old = serializers.CharField()
    new = serializers.CharField()
    reason = serializers.CharField()
    output = serializers.CharField()
    at = serializers.CharField()
    alert = serializers.CharField(help_text="The event type it raised, or empty.")
    suppressed = serializers.CharField(help_text="Why it raised none: maintenance, dependency, flapping.")


class MonitorMonthOutput(serializers.Serializer):
    month = serializers.CharField()
    uptime = serializers.FloatField(allow_null=True, help_text="Percent; null when nothing is known.")
    known_seconds = serializers.FloatField()
    down_seconds = serializers.FloatField()


class MonitorUptimeOutput(serializers.Serializer):
    months = MonitorMonthOutput(many=True)


class MonitorPingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    exit_status = serializers.IntegerField(allow_null=True)
    rid = serializers.UUIDField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)
    method = serializers.CharField()
    remote_addr = serializers.CharField()
    user_agent = serializers.CharField()
    body = serializers.CharField()
    at = serializers.DateTimeField()


class MonitorMaintenanceInput(serializers.Serializer):
    service = serializers.CharField()
    check = serializers.UUIDField(required=False, allow_null=True)
    starts = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends = serializers.DateTimeField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class MonitorMaintenanceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    check = serializers.UUIDField(source="check_ref_id", allow_null=True)
    starts = serializers.DateTimeField()
    ends = serializers.DateTimeField()
    reason = serializers.CharField()
    created_by = serializers.CharField()


class MonitorPingKeyInput(serializers.Serializer):
    service = serializers.CharField()


class MonitorPingKeyOutput(serializers.Serializer):
    key = serializers.CharField()
    service = serializers.CharField()
    created = serializers.DateTimeField()


class MonitorStatPointOutput(serializers.Serializer):
    at = serializers.CharField()
    node = serializers.CharField()
    resolution = serializers.CharField()
    cpu = serializers.FloatField(allow_null=True)
    memory = serializers.FloatField(allow_null=True)
    disk = serializers.FloatField(allow_null=True)
    runtime = serializers.FloatField(allow_null=True)
    threads = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    dropped = serializers.IntegerField()
    request_rate = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)


class MonitorStatsOutput(serializers.Serializer):
    service = serializers.CharField()
    node = serializers.CharField(allow_null=True)
    resolution = serializers.CharField()
    points = MonitorStatPointOutput(many=True)
