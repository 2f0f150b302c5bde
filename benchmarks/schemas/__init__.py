"""JSON Schemas of the results and leaderboard documents (package data)."""
