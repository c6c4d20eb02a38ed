"""kopf handlers. Importing this package registers them; each module wires one concern."""

from . import handle_monitors, handle_silences, handle_startup, handle_workloads

__all__ = ["handle_monitors", "handle_silences", "handle_startup", "handle_workloads"]
