"""Errors that carry a one-line message meant for the user (UI warning, CLI exit 2)."""


class InputError(ValueError):
    """A request the app refuses: bad budget, unknown id, malformed problem, unusable model."""
