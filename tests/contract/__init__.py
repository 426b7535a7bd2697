"""Contract test suites, written once and run against every backend of a Protocol."""
