"""Grafana dashboards built from code with grafana-foundation-sdk (a dev dependency; the
generated JSON ships in the chart). ``make dashboards`` rewrites them."""
