# Loads the brokercert pytest plugin for conformance/, scenarios/ and tests/; nothing else.
pytest_plugins = ["brokercert.pytest_plugin"]
