"""pytest-cursus: pipeline scripts as pytest items."""

__version__ = "0.1.0"
