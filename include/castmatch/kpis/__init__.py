"""KPIs: measured from their configured sources into stored samples (``castmatch.kpis.sources``)
and checked against their thresholds with Great Expectations (``castmatch.kpis.expectations``).

Nothing heavy is imported here: Great Expectations and pandas load only when a check runs.
"""

from castmatch.kpis.expectations import ValidationOutcome, validate_kpis, warm_up
from castmatch.kpis.sources import KpiMissing, collect_kpi, collect_kpis, sample_values

__all__ = ["KpiMissing", "ValidationOutcome", "collect_kpi", "collect_kpis", "sample_values", "validate_kpis",
           "warm_up"]
