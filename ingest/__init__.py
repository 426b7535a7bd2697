"""Ingest: collect news and social posts, normalise, deduplicate, publish RawItems.

Sources (:mod:`ingest.sources`: RSS/Atom over HTTP, JSON APIs with presets, file replay) fetch;
pure parsing lives in :mod:`ingest.parse`, :mod:`ingest.mappings` and :mod:`ingest.normalize`;
:mod:`ingest.fingerprint` and :mod:`ingest.neardup` find syndicated copies; :mod:`ingest.dedup` is
the persistent state; :mod:`ingest.pipeline` dedups, publishes and records a batch;
:mod:`ingest.worker` runs sources once or on the schedule of :mod:`ingest.schedule`, tracking
their health (:mod:`ingest.health`).
"""
