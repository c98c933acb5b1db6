"""The offsets a consumer commits never pass a record still being handled, whatever order records settle in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.structs import TopicPartition

from adapters.consumers import SettledOffsets

PARTITION = TopicPartition("pressroom.jobs", 0)


@given(st.permutations(range(12)))
def test_the_committed_offset_is_the_first_record_not_yet_settled(order: list[int]) -> None:
    offsets = SettledOffsets()
    for offset in range(12):
        offsets.hand_out(PARTITION, 100 + offset)
    settled: set[int] = set()
    committed = None
    for offset in order:
        offsets.settle(PARTITION, 100 + offset)
        settled.add(offset)
        if moved := offsets.to_commit():
            committed = moved[PARTITION].offset
        first_unsettled = next(o for o in range(13) if o not in settled)
        assert committed == (None if first_unsettled == 0 else 100 + first_unsettled)
    assert len(offsets) == 0


def test_a_partition_read_again_from_its_committed_offset_forgets_what_it_handed_out_before() -> None:
    offsets = SettledOffsets()
    for offset in (5, 6, 7):
        offsets.hand_out(PARTITION, offset)
    offsets.hand_out(PARTITION, 5)  # a rebalance gave the partition back from offset 5

    offsets.settle(PARTITION, 6)  # the handler of the first 6 finishing: not this reading's record
    offsets.settle(PARTITION, 5)

    assert offsets.to_commit() == {PARTITION: (6, "", -1)}
    assert len(offsets) == 0


def test_partitions_no_longer_assigned_are_not_committed() -> None:
    offsets = SettledOffsets()
    other = TopicPartition("pressroom.jobs", 1)
    offsets.hand_out(PARTITION, 0)
    offsets.hand_out(other, 0)
    offsets.settle(PARTITION, 0)
    offsets.settle(other, 0)

    offsets.keep_only({PARTITION})

    assert offsets.to_commit() == {PARTITION: (1, "", -1)}
