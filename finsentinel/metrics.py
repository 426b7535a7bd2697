"""Prometheus metrics, declared once for the whole process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECORDS_IN = Counter("finsentinel_records_in_total", "Records consumed from the bus", ["stage"])
RECORDS_OUT = Counter("finsentinel_records_out_total", "Records published to the bus", ["stage"])
DEAD_LETTERS = Counter("finsentinel_dead_letters_total", "Records sent to a dead-letter topic", ["stage"])
BATCH_SECONDS = Histogram("finsentinel_batch_seconds", "Time to process one consumed batch", ["stage"])
STAGE_ERRORS = Counter("finsentinel_stage_errors_total", "Batches that failed and will be redelivered", ["stage"])
INGESTED = Counter("finsentinel_ingested_total", "Items published by ingest", ["source"])
DUPLICATES = Counter("finsentinel_duplicates_total", "Items dropped as duplicates by ingest", ["source"])
SKIPPED = Counter("finsentinel_skipped_total", "Items skipped by ingest as malformed", ["source", "reason"])
ALERTS = Counter("finsentinel_alerts_total", "Alerts raised", ["scope"])
DETECT_WATERMARK = Gauge("finsentinel_detect_watermark_timestamp",
                         "Live detection's watermark: buckets ending before it are judged")
DETECT_WAITING = Gauge("finsentinel_detect_waiting_items",
                       "Items live detection has not judged yet (buckets or an arrival still open)")
DETECT_LATE = Counter("finsentinel_detect_late_items_total",
                      "Items indexed after their bucket was judged: searchable, not counted")
LAST_SUCCESS = Gauge("finsentinel_source_last_success_timestamp", "Last successful fetch", ["source"])


def serve(port: int | None) -> None:
    """Expose /metrics on ``port`` when one is configured."""
    if port:
        start_http_server(port)
