"""Notifications: what happened, told to whom it concerns, in the app, by email and by web push
(docs/notifications.md)."""
