"""A Sinch-compatible SMS simulator (FastAPI), written from the wire contract alone.

It imports nothing else of smsgateway, so a wrong client model cannot pass its own tests.
"""

from smsgateway.simulator.app import create_simulator_app, serve_simulator
from smsgateway.simulator.config import FaultSettings, Outcome, SimulatorConfig

__all__ = ["FaultSettings", "Outcome", "SimulatorConfig", "create_simulator_app", "serve_simulator"]
