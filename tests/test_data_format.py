"""The dataset folder format: a linked subset of a dataset for folds and label experiments."""

from __future__ import annotations

from labeled_datasets import write_colour_dataset

from weedseg.data.format import DatasetInfo, linked_dataset


def test_a_linked_dataset_lists_only_its_splits_and_shares_the_photos(tmp_path) -> None:
    full = write_colour_dataset(tmp_path / "full", {"train": [(16, 16)] * 3, "test": [(16, 16)]})
    train = full.split("train")
    linked_dataset(full.root, tmp_path / "fold", {"train": train[:2], "val": train[2:]}, "fold 0")
    fold = DatasetInfo.load(tmp_path / "fold")
    assert fold.splits == {"train": train[:2], "val": train[2:]}
    assert set(fold.images) == set(train)  # the test photo is not listed
    assert fold.source == "tests: colour discs (fold 0)" and fold.classes == full.classes
    assert (tmp_path / "fold" / "images").is_symlink()
    assert fold.image_path(train[0]).read_bytes() == full.image_path(train[0]).read_bytes()
