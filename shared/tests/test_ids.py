from __future__ import annotations

import time
import uuid

from verzuimhub_shared.ids import new_id


def test_new_ids_are_version_7_uuids_with_the_time_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text
        assert before <= parsed.int >> 80 <= after


def test_an_id_made_in_a_later_millisecond_sorts_after() -> None:
    earlier = [new_id() for _ in range(50)]
    time.sleep(0.002)
    later = [new_id() for _ in range(50)]
    assert max(earlier) < min(later)


def test_the_random_part_is_random() -> None:
    """74 random bits: ids made in the same millisecond differ beyond the time."""
    tails = {new_id()[14:] for _ in range(1000)}
    assert len(tails) == 1000
