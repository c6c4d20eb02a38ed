"""The local demo: a synthetic fraud dataset, a scikit-learn model served by MLServer, and a
traffic generator that drifts. Not part of the installed product."""
