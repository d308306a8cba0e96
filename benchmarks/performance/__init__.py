"""Performance: our server, load generator and model, each measured side by side with a bare baseline in one run."""
