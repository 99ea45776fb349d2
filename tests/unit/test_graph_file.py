"""``graph.npz``: the build_graph stage's output, written without torch and read back as the models' tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.artifacts import load_graph, save_graph
from gnnrec.errors import DataError
from gnnrec.io import load_arrays, save_arrays
from gnnrec.paths import Paths


def test_arrays_round_trip_keeps_values_dtypes_and_zero_d_numbers(tmp_path):
    path = tmp_path / "a.npz"
    save_arrays(path, {"n": np.int64(7), "x": np.array([3, 1, 2], dtype=np.int64),
                       "f": np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2], "empty": np.zeros(0, np.int64)})
    got = load_arrays(path)
    assert sorted(got) == ["empty", "f", "n", "x"]
    assert got["n"].shape == () and int(got["n"]) == 7
    assert got["x"].tolist() == [3, 1, 2] and got["x"].dtype == np.int64
    assert got["f"].tolist() == [[0.0, 2.0], [3.0, 5.0]] and got["f"].dtype == np.float32   # a strided view
    assert got["empty"].shape == (0,)


def test_equal_arrays_give_byte_identical_files(tmp_path):
    """DVC hashes the file: a rerun with equal content must not look like a change to the stages after it."""
    arrays = {"b": np.arange(5), "a": np.int64(3)}
    save_arrays(tmp_path / "1.npz", arrays)
    save_arrays(tmp_path / "2.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()


def test_unreadable_or_foreign_file_is_a_data_error_naming_it(tmp_path):
    bad = tmp_path / "graph.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_arrays(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled.npz"):
        load_arrays(pickled)
    with pytest.raises(DataError, match="missing"):
        load_arrays(tmp_path / "absent.npz")


def test_graph_round_trip_gives_int_counts_and_int64_tensors(tmp_path):
    paths = Paths(tmp_path)
    save_graph(paths, {"n_users": 3, "n_items": 4, "train_user": torch.tensor([0, 1, 2]),
                       "train_item": np.array([3, 2, 1], dtype=np.int32), "social_src": torch.tensor([0]),
                       "social_dst": torch.tensor([2])})
    graph = load_graph(paths)
    assert graph["n_users"] == 3 and graph["n_items"] == 4 and isinstance(graph["n_users"], int)
    assert graph["train_item"].dtype == torch.int64 and graph["train_item"].tolist() == [3, 2, 1]
    assert graph["social_src"].tolist() == [0] and graph["social_dst"].tolist() == [2]


def test_graph_without_its_arrays_is_named(tmp_path):
    paths = Paths(tmp_path)
    save_arrays(paths.graph, {"n_users": np.int64(1)})
    with pytest.raises(DataError, match="n_items.*missing"):
        load_graph(paths)
