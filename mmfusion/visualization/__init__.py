"""Visualisers and backends (mmengine's are used until mmfusion adds its own)."""
