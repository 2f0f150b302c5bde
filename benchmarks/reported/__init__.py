"""Paper-reported leaderboard rows (YAML package data)."""
