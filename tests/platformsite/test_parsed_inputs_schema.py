"""Inputs parsed by hand (the monitor's reports for the hot path, a check's settings, the router's
stats windows) and the serializers that document them in the OpenAPI schema name the same fields,
so neither can drift from the other."""

from __future__ import annotations

import pytest

from monitor_app.api import serializers as io
from monitor_app.services import manage, reports
from router_app.api import serializers as router_io
from router_app.services import stats


@pytest.mark.parametrize(
    "serializer, accepted",
    [
        (io.MonitorBatchInput, reports.BATCH_FIELDS),
        (io.MonitorReportInput, reports.REPORT_FIELDS),
        (io.MonitorCheckResultInput, reports.CHECK_FIELDS),
        (io.MonitorNodeStatusInput, reports.STATUS_FIELDS),
        (io.MonitorStatsInput, reports.STATS_FIELDS),
        (io.MonitorEndpointStatsInput, reports.ENDPOINT_FIELDS),
        (io.MonitorCheckUpdateInput, manage.EDITABLE),
        (router_io.RouterWindowInput, stats.FIELDS),
    ],
)
def test_documented_fields__are_the_fields_the_parser_accepts(serializer, accepted):
    assert set(serializer().fields) == set(accepted)
