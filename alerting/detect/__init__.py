"""Spike detection: pure functions from scored items, bucket counts or count series to alerts.

* :mod:`alerting.detect.sentiment`: negative-sentiment spikes per company, topic and overall;
* :mod:`alerting.detect.series`: spikes in a plain count series (scored on NAB);
* :mod:`alerting.detect.seasonal`: the robust, seasonal baselines both learn.
"""

from __future__ import annotations

from alerting.detect.buckets import EPOCH, bucket_index, bucket_start
from alerting.detect.sentiment import Detection, ItemDetector, detect, detect_counts, detect_items
from alerting.detect.series import detect_series

__all__ = ["EPOCH", "Detection", "ItemDetector", "bucket_index", "bucket_start", "detect", "detect_counts", "detect_items", "detect_series"]
