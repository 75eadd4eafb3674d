"""Audio: decoding files, cutting windows and segments, and the 57 GTZAN features (with a C extension)."""
