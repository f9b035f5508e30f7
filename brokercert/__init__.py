"""brokercert: a contract and conformance suite for brokerage account-opening APIs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
