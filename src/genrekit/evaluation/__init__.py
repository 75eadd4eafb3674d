"""Evaluation: protocols (splits), metrics, the paper's reproduction and its report."""
