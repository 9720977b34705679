"""The project's own tests drive the plugin with pytester."""

pytest_plugins = ["pytester"]
