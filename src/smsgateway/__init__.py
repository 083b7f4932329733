"""An async SMS gateway in front of the Sinch SMS REST API."""

__version__ = "0.1.0"
