"""The DeepLight benchmark harness: method registry, protocol, metrics, results and leaderboard."""
