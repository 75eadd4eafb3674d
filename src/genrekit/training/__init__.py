"""genrekit.training."""
