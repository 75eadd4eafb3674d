"""genrekit.core."""
