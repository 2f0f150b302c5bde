"""The DeepLight leaderboard: a JSON file of result rows, ranked within a dataset fingerprint.

``deeplightmd leaderboard add|validate|show|render|compare|merge-seeds`` (see
docs/leaderboard.md).
"""

from benchmarks.leaderboard.board import (
    DEFAULT_FILE,
    add_rows,
    add_to_file,
    load_board,
    read_rows,
    row_from_results,
    row_key,
    save_board,
    validate_board,
    validate_row,
)
from benchmarks.leaderboard.compare import Comparison, compare_results
from benchmarks.leaderboard.render import (
    format_html,
    format_markdown,
    format_text,
    group_rows,
    rank_rows,
)
from benchmarks.leaderboard.seeds import merge_seed_results
from benchmarks.leaderboard.tiers import assign_tiers, with_tiers

__all__ = ["DEFAULT_FILE", "Comparison", "add_rows", "add_to_file", "assign_tiers",
           "compare_results", "format_html", "format_markdown", "format_text", "group_rows",
           "load_board", "merge_seed_results", "rank_rows", "read_rows", "row_from_results",
           "row_key", "save_board", "validate_board", "validate_row", "with_tiers"]
