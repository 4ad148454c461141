"""Reporting: card-style leaderboards, measured-score picking, plots, regression checks, the report page and reported
scores. It reads the store and the suite definitions and writes nothing but reports."""
