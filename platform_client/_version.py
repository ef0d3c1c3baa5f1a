"""The SDK's own version (the ``micro-platform-client`` distribution), apart from the server's."""

__version__ = "0.1.0"
