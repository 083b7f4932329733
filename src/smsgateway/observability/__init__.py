"""Logging, metrics and their masking.

Every metric module is in this package, so the package installs the multiprocess value class
before any of them can create a metric (``multiprocess_values``).
"""

from smsgateway.observability.multiprocess_values import install_pid_cached_values

install_pid_cached_values()
