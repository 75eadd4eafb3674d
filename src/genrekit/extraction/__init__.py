"""genrekit.extraction."""
