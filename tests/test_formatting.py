"""The one number format of reports, the CLI and the demo page."""

from __future__ import annotations

import numpy as np

from weedseg.formatting import format_number


def test_scores_print_with_four_decimals_and_missing_ones_as_na() -> None:
    assert format_number(0.123456) == "0.1235"
    assert format_number(np.float32(0.5)) == "0.5000"  # numpy scores read the same
    assert format_number(1.0) == "1.0000"
    assert format_number(None) == "n/a"
    assert format_number(0.123456, digits=2) == "0.12"


def test_counts_names_and_fraction_tables_keep_their_form() -> None:
    assert format_number(3) == "3" and format_number(np.int64(3)) == "3"
    assert format_number(True) == "True"
    assert format_number("bf16, channels_last") == "bf16, channels_last"
    assert format_number({"soil": 0.71234, "weed": None}) == "soil 0.7123, weed n/a"
