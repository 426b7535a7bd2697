"""Alerting: index scored items and flag negative-sentiment spikes per company, topic and overall."""
