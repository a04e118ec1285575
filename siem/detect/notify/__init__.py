"""Alert notifications: routes from the config, an outbox in the store, signed deliveries.

See docs/notifications.md. ``Outbox(store, routes).enqueue(alert, routes)`` records; a loop calls
``deliver_due()``. Only ``routes`` is imported eagerly (the config loader needs it); the rest on use.
"""

from __future__ import annotations

from typing import Any

from siem.detect.notify.routes import NotifyRoute, compile_notifications, select_routes

__all__ = ["DeliveryReport", "NotificationState", "NotifyRoute", "Outbox", "compile_notifications", "select_routes"]


def __getattr__(name: str) -> Any:
    if name in ("DeliveryReport", "NotificationState", "Outbox"):
        from siem.detect.notify import outbox

        return getattr(outbox, name)
    raise AttributeError(name)
