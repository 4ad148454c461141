"""Reporting: card-style leaderboards, measured-score picking, plots, regression checks and reported scores. It reads
the store and the suite definitions and writes nothing but reports."""
