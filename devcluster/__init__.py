"""Local development cluster: a real Kubernetes control plane, kwok nodes, Prometheus
and Alertmanager, started as local processes on 127.0.0.1 for tests and the demo."""
