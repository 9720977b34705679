"""The project's own tests drive the plugin with pytester.

Registered in a hook rather than `pytest_plugins`, because this file is also seen when the
conformance suite beside it is collected from another directory (an editable install).
"""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
