"""The reference server: both dialects of the specs, real storage, optional faults.

``brokercert serve`` runs it in the foreground; :func:`start_in_thread` embeds it (the
default target of ``brokercert run``, and the tests' server).
"""

from brokercert.server._app import create_app
from brokercert.server._config import ServerConfig
from brokercert.server._faults import FAULTS, Fault
from brokercert.server._runner import RunningServer, serve, start_in_thread

__all__ = ["FAULTS", "Fault", "RunningServer", "ServerConfig", "create_app", "serve",
           "start_in_thread"]
