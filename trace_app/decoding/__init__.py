"""Decoding spans from the wire (OTLP protobuf and JSON, Zipkin v2 JSON and protobuf) into span
rows: dicts with the columns of ``trace_app.models.Span`` (see ``common.new_span``)."""
