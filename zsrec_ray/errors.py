"""Exceptions raised for bad user input; their messages are meant to be shown as they are."""


class ZsrecError(Exception):
    """Base class for errors caused by input the user can fix."""


class DataError(ZsrecError):
    """A data file or table is missing, malformed or empty."""


class ConfigError(ZsrecError):
    """A configuration value is invalid."""
