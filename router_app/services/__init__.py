"""Writes of the router service, one module per use case: stats ingest, evaluations, operator rules.

Every change to what a service's routes say (an evaluation that moved a weight or an ejection, a
label, rule, rate limit or policy written) bumps the service's routes revision; once the
transaction commits, cached routes are forgotten and ``/ws/router/`` watchers are told.
"""

from router_app.services.common import (
    ALL_GROUP,
    CALLER,
    LABEL_KEY,
    LABEL_VALUE,
    SERVICE,
    VERSION_NAME,
    check_service,
    current_revision,
    group_name,
    policy_for,
)
from router_app.services.decisions import due_services, evaluate_due, events_purge, service_evaluate
from router_app.services.rules import (
    get_or_404,
    label_delete,
    label_save,
    policy_update,
    rate_limit_delete,
    rate_limit_set,
    rule_delete,
    rule_save,
)
from router_app.services.stats import IngestReport, stats_ingest, stats_prune

__all__ = [
    "ALL_GROUP",
    "CALLER",
    "LABEL_KEY",
    "LABEL_VALUE",
    "SERVICE",
    "VERSION_NAME",
    "IngestReport",
    "check_service",
    "current_revision",
    "due_services",
    "evaluate_due",
    "events_purge",
    "get_or_404",
    "group_name",
    "label_delete",
    "label_save",
    "policy_for",
    "policy_update",
    "rate_limit_delete",
    "rate_limit_set",
    "rule_delete",
    "rule_save",
    "service_evaluate",
    "stats_ingest",
    "stats_prune",
]
