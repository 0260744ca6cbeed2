"""govsoc: security monitoring and incident response for government networks."""

__version__ = "0.1.0"
