"""genrekit.selection."""
