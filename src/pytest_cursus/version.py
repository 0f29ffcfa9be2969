"""The plugin's version: one place, read by the package metadata (pyproject.toml) and the step
cache key (an upgrade of the plugin reruns every step)."""

__version__ = "0.1.0"
