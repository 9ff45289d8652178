"""The checkpoint store on a real blob folder: atomic, checksummed, the last two kept, fallbacks named."""

from __future__ import annotations

from pathlib import Path

import pytest

from easel.blobstore import LocalBlobStore
from train_worker.checkpoints import CheckpointCorrupt, CheckpointStore, unwrap, wrap


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(LocalBlobStore(tmp_path), "stj")


def test_only_the_last_two_checkpoints_are_kept(store: CheckpointStore) -> None:
    for units in range(1, 6):
        store.save("t", units, f"state {units}".encode())
    assert list(store.blobs.keys(store.prefix("t"))) == [store.key("t", 4), store.key("t", 5)]
    assert store.resume("t", 5).state == b"state 5"
    assert store.bytes_written > 0 and store.bytes_read == len(wrap(b"state 5"))


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(store: CheckpointStore) -> None:
    store.save("t", 1, b"one")
    store.save("t", 2, b"two")
    store.blobs.put_bytes(store.key("t", 2), wrap(b"two")[:-1] + b"!")
    resumption = store.resume("t", 2)
    assert (resumption.units, resumption.state) == (1, b"one")
    assert resumption.problems == ["checkpoint after unit 2 is corrupt: checksum mismatch (truncated or altered)"]


def test_with_no_good_checkpoint_the_trial_starts_over(store: CheckpointStore) -> None:
    store.save("t", 1, b"one")
    store.save("t", 2, b"two")
    store.blobs.put_bytes(store.key("t", 1), b"garbage")
    store.blobs.delete(store.key("t", 2))
    resumption = store.resume("t", 2)
    assert (resumption.units, resumption.state) == (0, None)
    assert resumption.problems == ["checkpoint after unit 2 is missing",
                                   "checkpoint after unit 1 is corrupt: not a checkpoint (no envelope)"]
    assert store.resume("t", 0).problems == [], "a trial with nothing done has nothing to miss"


def test_clear_removes_every_checkpoint_of_the_trial_only(store: CheckpointStore) -> None:
    store.save("t", 1, b"one")
    store.save("u", 1, b"other")
    assert store.clear("t") == 1
    assert list(store.blobs.keys("checkpoints/")) == [store.key("u", 1)]


def test_unwrap_refuses_what_it_did_not_wrap() -> None:
    with pytest.raises(CheckpointCorrupt):
        unwrap(b"EASELCK1short")
    assert unwrap(wrap(b"")) == b""
