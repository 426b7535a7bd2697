"""Ingest: read news feeds (RSS/Atom XML, JSON API responses), normalise, dedup, publish RawItems.

Pure logic lives in :mod:`ingest.parse` and :mod:`ingest.normalize`; :mod:`ingest.dedup` holds the
persistent exact-duplicate memory and per-file checkpoints; :mod:`ingest.worker` is the thin loop.
"""
