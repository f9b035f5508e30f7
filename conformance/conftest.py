"""Registers the dialect error-envelope check before the fuzzing modules load."""

from brokercert import fuzzing
from brokercert.pytest_plugin import session_settings

fuzzing.register_envelope_check(lambda: session_settings().catalog.profile)
