"""The version of genrekit (one place; the package face and saved models read it)."""

__version__: str = "0.1.0"
