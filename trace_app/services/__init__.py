"""Writes of the trace service: ingest (keep rules, the span store, the live service graph) and
retention."""

from trace_app.services.ingest import IngestResult, ingest_spans
from trace_app.services.retention import ensure_partitions, expire_spans

__all__ = ["IngestResult", "ensure_partitions", "expire_spans", "ingest_spans"]
