"""Validation: matrices of real runs, what the model is held to, and the 10,000-image drop."""
