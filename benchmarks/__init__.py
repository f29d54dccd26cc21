"""Reproducible speed and accuracy measurements, each against a baseline in the same run."""
