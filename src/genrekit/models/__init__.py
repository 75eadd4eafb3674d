"""Models: the paper's CNN, classical baselines, calibration, the prediction recipe and saving/loading."""
