"""The application layer: configuration, the command line and the pipeline that ties the packages."""

__version__ = "0.1.0"
