"""Flow-log analysis, pure: formats, what crosses a peering, aggregates, baselines, rules."""
