"""genrekit.datasets."""
