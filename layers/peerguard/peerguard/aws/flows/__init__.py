"""Flow-log adapters: the embedded engine (DuckDB), the sources, the pushed-down engines."""
