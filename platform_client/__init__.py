"""Python SDK for Micro Platform: what a service imports to use the platform.

No Django import anywhere in this package: services in any framework can use it.
"""

from platform_client._version import __version__
from platform_client.entry import Platform
from platform_client.session import ClientCredentials, PlatformError, PlatformSession

__all__ = ["ClientCredentials", "Platform", "PlatformError", "PlatformSession", "__version__"]
