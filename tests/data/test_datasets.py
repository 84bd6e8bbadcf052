"""Data loaders: the real data sets, the Kaggle formats, and a clear error for every kind of bad file."""

from __future__ import annotations

import gzip
import shutil

import cv2
import numpy as np
import pytest

from common.errors import UserError
from data.datasets import (
    FER_CLASSES,
    DataError,
    load_cifar10,
    load_fer2013,
    load_mnist,
    resolve_data_dir,
)
from tests.conftest import require_data


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("TRAINLAB_DATA")
    assert resolve_data_dir() == tmp_path / "kh" / "datasets"


@pytest.mark.realdata
def test_real_mnist_and_cifar10(data_dir):
    require_data(data_dir, "mnist.npz", "cifar10.npz")
    mnist = load_mnist(data_dir)
    assert mnist["train"][0].shape == (60000, 28, 28) and mnist["test"][0].shape == (10000, 28, 28)
    assert np.bincount(mnist["test"][1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    cifar = load_cifar10(data_dir)
    assert cifar["train"][0].shape[1:] == (32, 32, 3) and cifar["train"][1].ndim == 1
    assert len(mnist.checksums["mnist.npz"]) == 64


@pytest.mark.realdata
def test_real_fer2013_keeps_the_kaggle_splits(data_dir):
    require_data(data_dir, "fer2013.npz")
    fer = load_fer2013(data_dir)
    assert {s: len(fer[s][1]) for s in fer.splits} == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert np.bincount(fer["PrivateTest"][1]).tolist() == [491, 55, 528, 879, 594, 416, 626]


@pytest.mark.realdata
def test_fer2013_csv_and_gzip_match_the_sample(data_dir, tmp_path):
    require_data(data_dir, "fer2013_sample.csv")
    shutil.copy(data_dir / "fer2013_sample.csv", tmp_path / "fer2013.csv")
    plain = load_fer2013(tmp_path)
    assert {s: len(plain[s][1]) for s in plain.splits} == {"Training": 98, "PublicTest": 98, "PrivateTest": 98}
    assert plain["Training"][0][0, 0, :4].tolist() == [70, 80, 82, 72]  # row 0 of the Kaggle csv
    (tmp_path / "fer2013.csv").rename(tmp_path / "raw.csv")
    with open(tmp_path / "raw.csv", "rb") as src, gzip.open(tmp_path / "fer2013.csv.gz", "wb") as dst:
        dst.write(src.read())
    packed = load_fer2013(tmp_path)
    np.testing.assert_array_equal(packed["PrivateTest"][0], plain["PrivateTest"][0])


def _write_csv(path, rows):
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{r}\n" for r in rows))


def test_csv_row_with_wrong_pixel_count_names_the_line(tmp_path):
    good = "3," + " ".join(["1"] * 2304) + ",Training"
    _write_csv(tmp_path / "fer2013.csv", [good, good, "3," + " ".join(["1"] * 2303) + ",Training"])
    with pytest.raises(DataError) as caught:
        load_fer2013(tmp_path)
    assert str(caught.value) == (f"{tmp_path / 'fer2013.csv'}: line 4 has 2303 pixels; expected 2304 (48x48); fix "
                                 "that line, or delete fer2013.csv to use the original (the Keras cache's, else a "
                                 "download)")


def test_csv_label_outside_range_names_the_line(tmp_path):
    _write_csv(tmp_path / "fer2013.csv", ["9," + " ".join(["1"] * 2304) + ",Training"])
    with pytest.raises(DataError, match=r"line 2 has emotion 9; expected 0-6"):
        load_fer2013(tmp_path)


def test_truncated_npz_is_a_clear_error(tmp_path):
    np.savez_compressed(tmp_path / "full.npz", x_train=np.zeros((100, 28, 28), np.uint8),
                        y_train=np.zeros(100, np.uint8), x_test=np.zeros((10, 28, 28), np.uint8),
                        y_test=np.zeros(10, np.uint8))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"mnist\.npz is truncated or not an npz archive"):
        load_mnist(tmp_path)


def test_npz_with_wrong_shapes_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((4, 32, 32), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"train images have shape \(4, 32, 32\)"):
        load_mnist(tmp_path)


def offline_kaggle(monkeypatch, tmp_path):
    """An empty Keras cache under tmp_path and a kagglehub that cannot reach Kaggle."""
    import kagglehub

    def offline(handle, **_):
        raise ConnectionError(f"cannot reach kaggle.com for {handle}")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    return tmp_path / "keras" / "datasets"


def test_missing_fer2013_offline_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    cache = offline_kaggle(monkeypatch, tmp_path)
    with pytest.raises(DataError) as error:
        load_fer2013(tmp_path / "data")
    message = str(error.value)
    assert str(tmp_path / "data") in message and "fer2013.csv" in message and "Kaggle" in message
    assert "download of Kaggle's deadskull7/fer2013 failed (no network: cannot reach kaggle.com" in message
    assert not cache.exists() or not list(cache.iterdir())


def _kaggle_copy(monkeypatch, tmp_path, rows):
    """A kagglehub that 'downloads' a folder holding fer2013/fer2013.csv with ``rows``; returns the calls."""
    import kagglehub

    calls = []
    folder = tmp_path / "kagglehub" / "fer2013"
    folder.mkdir(parents=True)
    _write_csv(folder / "fer2013.csv", rows)

    def download(handle, **_):
        calls.append(handle)
        return str(folder.parent)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(kagglehub, "dataset_download", download)
    return calls


FACE_ROWS = [f"{i % 7}," + " ".join([str(i)] * 2304) + f",{usage}"
             for i, usage in enumerate(["Training"] * 7 + ["PublicTest"] * 7 + ["PrivateTest"] * 7)]


def test_fer2013_downloads_once_into_the_keras_cache_when_it_passes_the_checksum(tmp_path, monkeypatch):
    import data.datasets as datasets

    calls = _kaggle_copy(monkeypatch, tmp_path, FACE_ROWS)
    expected = datasets.fer2013_content_sha256(*datasets.parse_fer2013_csv(
        ["emotion,pixels,Usage", *FACE_ROWS], tmp_path / "rows"))
    monkeypatch.setattr(datasets, "FER2013_CONTENT_SHA256", expected)
    fer = load_fer2013(tmp_path / "empty")
    cache = tmp_path / "keras" / "datasets"
    assert calls == ["deadskull7/fer2013"] and sorted(p.name for p in cache.iterdir()) == ["fer2013.csv"]
    assert {s: len(fer[s][1]) for s in fer.splits} == {"Training": 7, "PublicTest": 7, "PrivateTest": 7}
    assert fer.source == str(cache / "fer2013.csv")
    again = load_fer2013(tmp_path / "empty")  # from the cache: no second download
    assert calls == ["deadskull7/fer2013"]
    np.testing.assert_array_equal(again["PrivateTest"][0], fer["PrivateTest"][0])


def test_a_copy_that_fails_the_checksum_or_breaks_halfway_leaves_nothing(tmp_path, monkeypatch):
    _kaggle_copy(monkeypatch, tmp_path, FACE_ROWS)  # not the original 35,887 rows
    cache = tmp_path / "keras" / "datasets"
    with pytest.raises(DataError, match="fails its checksum .* nothing was stored"):
        load_fer2013(tmp_path / "empty")
    assert list(cache.iterdir()) == []

    def broken_copy(source, destination):
        with open(destination, "w") as handle:
            handle.write("emotion,pixels,Usage\n3,1 2")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", broken_copy)
    with pytest.raises(UserError, match=f"no space left on the device of {cache}: about .* is needed"):
        load_fer2013(tmp_path / "empty")
    assert list(cache.iterdir()) == []


def _keras_download_failure(cause: Exception):
    """What keras.utils.get_file raises: its own Exception with urllib's error as the context, or its ValueError
    for a file that fails its hash."""
    import urllib.error

    def load_data():
        try:
            raise cause
        except urllib.error.HTTPError as error:
            raise Exception(f"URL fetch failure on https://storage.googleapis.com/x: {error.code} -- {error.msg}")  # noqa: B904
        except urllib.error.URLError as error:
            raise Exception(f"URL fetch failure on https://storage.googleapis.com/x: None -- {error.reason}")  # noqa: B904

    return load_data


@pytest.mark.parametrize(("cause", "said"), [
    ("offline", "no network: [Errno -3] Temporary failure in name resolution"),
    ("missing", "HTTP status 404 (Not Found)"),
    ("altered", "the downloaded file failed its checksum"),
])
def test_missing_mnist_whose_download_fails_names_the_cause(tmp_path, monkeypatch, cause, said):
    import socket
    import urllib.error

    import keras

    load_data = {
        "offline": _keras_download_failure(urllib.error.URLError(socket.gaierror(-3, "Temporary failure in "
                                                                                      "name resolution"))),
        "missing": _keras_download_failure(urllib.error.HTTPError("https://x", 404, "Not Found", {}, None)),
        "altered": _keras_download_failure(ValueError("Incomplete or corrupted file detected. The sha256 file "
                                                      "hash does not match the provided value.")),
    }[cause]
    monkeypatch.setattr(keras.datasets.mnist, "load_data", load_data)
    with pytest.raises(DataError) as error:
        load_mnist(tmp_path)
    assert str(error.value).startswith(f"mnist.npz was not found in {tmp_path} and the download failed ({said}")


def _image_folders(root, names=FER_CLASSES):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for i, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True)
            for j in range(2):
                prefix = "Training" if split == "train" else ("PublicTest" if j == 0 else "PrivateTest")
                cv2.imwrite(str(folder / f"{prefix}_{i}{j}.png"), rng.integers(0, 255, (48, 48), np.uint8))


def test_image_folder_layout_keeps_usage_from_file_names(tmp_path):
    _image_folders(tmp_path)
    fer = load_fer2013(tmp_path)
    assert {s: len(fer[s][1]) for s in fer.splits} == {"Training": 14, "PublicTest": 7, "PrivateTest": 7}
    assert sorted(set(fer["Training"][1].tolist())) == list(range(7))


def test_unknown_emotion_folder_is_named(tmp_path):
    _image_folders(tmp_path, names=("angry", "happpy"))
    with pytest.raises(DataError, match=r"unknown emotion folder .*happpy.*expected one of angry"):
        load_fer2013(tmp_path)
