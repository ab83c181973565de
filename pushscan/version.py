"""pushscan's version (one place: the package, its reports and the build read it)."""
__version__ = "0.1.0"
