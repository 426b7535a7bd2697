"""The built-in dashboard (``finsentinel dashboard``): sentiment by company and topic, alerts, items."""
