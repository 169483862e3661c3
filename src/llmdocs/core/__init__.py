"""The kernel every service builds on: settings, app factory, auth, storage, events."""
