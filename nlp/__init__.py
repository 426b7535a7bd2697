"""NLP stage: topic + sentiment classification and company linking of raw news items."""
