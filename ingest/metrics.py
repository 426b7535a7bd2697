"""Prometheus metrics of the ingest worker, declared once (the shared ones are in finsentinel.metrics).

Per source: ``finsentinel_ingested_total`` (new items published), ``finsentinel_duplicates_total``
(exact duplicates), ``finsentinel_skipped_total`` and ``finsentinel_source_last_success_timestamp``
come from :mod:`finsentinel.metrics`; this module adds fetched entries, near-duplicates, fetch
errors, retries, fetch time, and the paused/suspicious state of each source.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FETCHED = Counter("finsentinel_ingest_fetched_total", "Entries read from a source (before dedup)", ["source"])
NEAR_DUPLICATES = Counter(
    "finsentinel_ingest_near_duplicates_total", "Items dropped as near-duplicates (syndicated copies)", ["source"]
)
FETCH_ERRORS = Counter("finsentinel_ingest_fetch_errors_total", "Failed fetches of a source", ["source"])
HTTP_RETRIES = Counter("finsentinel_ingest_http_retries_total", "HTTP requests retried (429, 5xx, network)",
                       ["source"])
FETCH_SECONDS = Histogram("finsentinel_ingest_fetch_seconds", "Time to fetch and parse one batch of a source",
                          ["source"])
PAUSED = Gauge("finsentinel_ingest_source_paused", "1 while a source's circuit breaker is open", ["source"])
SUSPICIOUS = Gauge(
    "finsentinel_ingest_source_suspicious", "1 while a source that had items keeps returning none", ["source"]
)
