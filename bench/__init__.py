"""Benchmarks for the CRM: `make bench` (all scenarios) or `make bench SCENARIO=name`."""
