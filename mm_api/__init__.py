"""The contract between the operator and the worker, owned by neither.

Both ``mm_operator`` and ``monitor_worker`` import this package and never each other
(``tests/unit/test_layering.py`` fails otherwise). It holds:

- :mod:`mm_api.sections`: the spec sections both sides read (window, drift, outliers,
  quality, labels, alerts, features);
- :mod:`mm_api.spec`: the ModelMonitor spec and status types; the CRD is generated from them
  (:mod:`mm_api.crd`, ``make crd``);
- :mod:`mm_api.worker_config`: the worker's config file, which the operator renders and the
  worker reads;
- :mod:`mm_api.metrics`: every metric the worker exports (name, kind, labels, help);
- :mod:`mm_api.alerts`: one table of alert definitions, rendered to PromQL by the operator and
  evaluated on the worker's own samples for ``/v1/status``;
- :mod:`mm_api.status`: the typed ``/v1/status`` document.
"""
