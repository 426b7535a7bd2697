"""Training of FinSentinel's classifiers: seed data, training arguments, multi-task fine-tuning."""
