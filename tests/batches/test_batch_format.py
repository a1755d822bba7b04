"""The formatting the batch lists do by hand, for speed: it must still read right and escape."""

from datetime import datetime

from batches.templatetags.batch_format import minute


def test_a_time_reads_to_the_minute_without_leading_zero_on_the_day() -> None:
    assert minute(datetime(2026, 3, 4, 9, 5)) == "4 Mar 2026 09:05"
    assert minute(datetime(2026, 12, 31, 23, 59)) == "31 Dec 2026 23:59"
    assert minute(None) == ""
