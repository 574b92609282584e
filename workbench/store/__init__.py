"""The query layer over a DuckDB file (embedded by default)."""
from .duck import BatchOutcome, IngestReport, Store, StoredPassport, manifest_from_dict, schema_name
from .queries import (QueryResult, cardinalities, dimension_breakdown, filter_sql, leaves, metric_panel,
                      metric_series, rows_by_bucket, slice_series, time_range, window_rows)

__all__ = ["BatchOutcome", "IngestReport", "QueryResult", "Store", "StoredPassport", "cardinalities",
           "dimension_breakdown", "filter_sql", "leaves", "manifest_from_dict", "metric_panel", "metric_series",
           "rows_by_bucket", "schema_name", "slice_series", "time_range", "window_rows"]
