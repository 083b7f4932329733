"""The metric types every metric module creates its metrics from.

Importing them from here installs the pid-cached multiprocess values first
(``multiprocess_values``), so no metric can be created before them, in any process.
"""

from prometheus_client import Counter, Gauge, Histogram

from smsgateway.observability.multiprocess_values import install_pid_cached_values

install_pid_cached_values()

__all__ = ["Counter", "Gauge", "Histogram"]
