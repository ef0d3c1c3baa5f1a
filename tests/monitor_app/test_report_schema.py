"""The report parser (written by hand, for the hot path) and the serializers that document it in
the OpenAPI schema name the same fields, so neither can drift from the other."""

from __future__ import annotations

import pytest

from monitor_app.api import serializers as io
from monitor_app.services import reports


@pytest.mark.parametrize(
    "serializer, accepted",
    [
        (io.MonitorBatchInput, reports.BATCH_FIELDS),
        (io.MonitorReportInput, reports.REPORT_FIELDS),
        (io.MonitorCheckResultInput, reports.CHECK_FIELDS),
        (io.MonitorNodeStatusInput, reports.STATUS_FIELDS),
        (io.MonitorStatsInput, reports.STATS_FIELDS),
        (io.MonitorEndpointStatsInput, reports.ENDPOINT_FIELDS),
    ],
)
def test_documented_fields__are_the_fields_the_parser_accepts(serializer, accepted):
    assert set(serializer().fields) == set(accepted)
