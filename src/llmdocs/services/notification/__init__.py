"""Notification: subscriptions, alert rules, and webhook / in-app (and Slack, email)
delivery of bus events, at least once, with retries, dead letters and replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import SMALL_REQUESTS, ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData

GROUP = "notification"  # its consumer group: replicas share the events, a crash redelivers


def _privacy(app: FastAPI) -> SubjectData:
    from llmdocs.services.notification.privacy import subject_data

    return subject_data(app)


def _router() -> APIRouter:
    from llmdocs.services.notification.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The subscriptions, the inboxes, and the engine: a consumer of every bus event and
    a sender of due deliveries."""
    from llmdocs.core.fetch import guarded_client
    from llmdocs.services.notification.alerts import alert_rules
    from llmdocs.services.notification.alertsettings import AlertSettings
    from llmdocs.services.notification.audience import Audience
    from llmdocs.services.notification.channels import ChannelContext
    from llmdocs.services.notification.delivery import Engine
    from llmdocs.services.notification.grouping import Grouping
    from llmdocs.services.notification.inbox import Inbox
    from llmdocs.services.notification.rules import build_rules
    from llmdocs.services.notification.service import Notifications
    from llmdocs.services.notification.settings import NotificationSettings
    from llmdocs.services.notification.throttle import Throttle

    settings, resources = app.state.settings, app.state.resources
    config = NotificationSettings()
    inbox = Inbox(resources.database, config.poll_seconds)
    http = guarded_client(settings.blocked_networks, timeout=config.send_timeout_seconds)
    context = ChannelContext(settings, config, http, resources.database, inbox)
    notifications = Notifications(resources.database, settings.secrets_ring, context)
    alerting = AlertSettings()
    engine = Engine(config, notifications,
                    build_rules(alert_rules(alerting, resources.database)), Audience(app),
                    Grouping(alerting.group_window_seconds),
                    Throttle(resources.database, alerting.rate_limit,
                             alerting.rate_window_seconds))
    app.state.notifications, app.state.inbox = notifications, inbox
    subscription = resources.events.subscribe_batch(GROUP, engine.on_events) \
        if config.consume_events else None
    if config.send:
        engine.start()
    try:
        yield
    finally:
        if subscription is not None:
            await subscription.stop()
        await engine.stop()
        await http.aclose()


spec = ServiceSpec(
    key="notification",
    name="notification",
    title="Notification",
    description=("Subscriptions to bus events and alerts, delivered to webhooks (Standard "
                 "Webhooks), Slack, email and an in-app inbox, with retries and replay."),
    scope="notifications",
    router=_router,
    lifespan=_lifespan,
    max_body_bytes=SMALL_REQUESTS,
    privacy=_privacy,
)
