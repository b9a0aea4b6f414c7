"""lanthorn: a static-file web server."""

__version__ = "0.1.0"
