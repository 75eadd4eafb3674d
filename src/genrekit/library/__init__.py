"""Library work: feature tables from many files, predictions for files, genre tags."""
