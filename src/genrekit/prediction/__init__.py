"""genrekit.prediction."""
