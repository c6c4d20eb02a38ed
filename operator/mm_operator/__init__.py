"""The Model Monitor operator (kopf): ModelMonitor spec -> worker, Prometheus wiring, status."""
