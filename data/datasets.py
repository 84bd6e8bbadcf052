"""Loaders for MNIST, CIFAR-10 and FER2013 from the data directory, with clear errors.

The data directory is ``--data-dir``, else ``$TRAINLAB_DATA``, else the Keras cache
(``$KERAS_HOME/datasets``, default ``~/.keras/datasets``). MNIST and CIFAR-10 fall back to
``keras.datasets`` (a download) when their ``.npz`` is not there; FER2013 falls back to the Keras
cache and then to a public Kaggle copy of the original ``fer2013.csv``, fetched with ``kagglehub``,
verified and stored in the Keras cache.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError, download_cause
from common.files import atomic_path

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SPLITS = ("Training", "PublicTest", "PrivateTest")
FER_PIXELS = 48 * 48
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A public Kaggle data set (no sign-in) that holds the challenge's original fer2013.csv with its Usage column.
FER2013_KAGGLE_HANDLE = "deadskull7/fer2013"
# sha256 of the original fer2013.csv (301,072,766 bytes, "\n" line ends) ...
FER2013_CSV_SHA256 = "3b8d9617d1017f34733c8f2474d7784c563ce86c40a86ac12c2d37cc968f871b"
# ... and of its parsed content (faces, labels, Usage), which also accepts a copy re-saved with "\r\n".
FER2013_CONTENT_SHA256 = "07df9bc58694e5fdb359533f4bbfcb3ede743fc2d119d32ec102ad27ca6ce382"
# Kaggle's image-folder release names its folders train/ and test/; some copies add val/.
FOLDER_SPLITS = {"train": "Training", "val": "PublicTest", "validation": "PublicTest", "test": "PrivateTest"}


class DataError(UserError):
    """Missing or malformed data; the message names the file, the problem and the fix."""


@dataclass
class Dataset:
    """Arrays of one data set by split name, plus the sha256 of the files they came from."""

    name: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    checksums: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def __getitem__(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[split]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("TRAINLAB_DATA"):
        return Path(os.environ["TRAINLAB_DATA"]).expanduser()
    return keras_cache_dir()


def keras_cache_dir() -> Path:
    """Where ``keras.datasets`` keeps its downloads: ``$KERAS_HOME/datasets``, default ``~/.keras/datasets``."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(keras_home) / "datasets"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DataError(f"{path} lacks the arrays {', '.join(missing)} (has {', '.join(archive.files)}); "
                                f"re-create it with keys {', '.join(keys)}")
            return {k: archive[k] for k in keys}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path} is truncated or not an npz archive ({error}); download it again") from None


def _check_images(path: Path, name: str, x: np.ndarray, y: np.ndarray, shape: tuple, classes: int) -> None:
    if x.shape[1:] != shape or x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: {name} images have shape {x.shape} for {y.shape[0]} labels; expected (N, "
                        f"{', '.join(map(str, shape))}) with one label each")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{path}: {name} labels must be in 0-{classes - 1}, found {int(y.min())}-{int(y.max())}")


def _load_keras_npz(name: str, data_dir, shape: tuple, keras_loader) -> Dataset:
    directory = resolve_data_dir(data_dir)
    path = directory / f"{name}.npz"
    if path.exists():
        arrays = _read_npz(path, ("x_train", "y_train", "x_test", "y_test"))
        splits = {}
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1).astype(np.int64)
            _check_images(path, split, x, y, shape, 10)
            splits[split] = (x, y)
        return Dataset(name, splits, {path.name: sha256(path)}, str(path))
    try:
        (x_train, y_train), (x_test, y_test) = keras_loader()
    except Exception as error:  # keras raises bare Exception subclasses for network failures
        raise DataError(
            f"{name}.npz was not found in {directory} and the download failed ({download_cause(error)}); "
            f"put {name}.npz there, or pass --data-dir / set TRAINLAB_DATA to the folder that has it"
        ) from None
    splits = {"train": (x_train, y_train.reshape(-1).astype(np.int64)),
              "test": (x_test, y_test.reshape(-1).astype(np.int64))}
    return Dataset(name, splits, {}, "keras.datasets")


def load_mnist(data_dir=None) -> Dataset:
    """MNIST as uint8 (N, 28, 28) images with int64 labels, splits ``train`` and ``test``."""
    import keras

    return _load_keras_npz("mnist", data_dir, (28, 28), keras.datasets.mnist.load_data)


def load_cifar10(data_dir=None) -> Dataset:
    """CIFAR-10 as uint8 (N, 32, 32, 3) RGB images with int64 labels, splits ``train`` and ``test``."""
    import keras

    return _load_keras_npz("cifar10", data_dir, (32, 32, 3), keras.datasets.cifar10.load_data)


# --- FER2013 ----------------------------------------------------------------------------------
def load_fer2013(data_dir=None, download: bool = True) -> Dataset:
    """FER2013 as uint8 (N, 48, 48) faces, splits Training / PublicTest / PrivateTest.

    Looked for, in order: ``fer2013.npz`` (x, y, usage), ``fer2013.csv`` or ``fer2013.csv.gz``
    (Kaggle columns emotion,pixels,Usage), and the Kaggle image folders ``fer2013/`` or ``train/`` +
    ``test/`` with one sub-folder per emotion; then ``fer2013.csv`` in the Keras cache; then (with
    ``download``) the Kaggle copy ``FER2013_KAGGLE_HANDLE``, verified and stored in the Keras cache.
    """
    directory = resolve_data_dir(data_dir)
    found = _find_fer2013(directory)
    if found is not None:
        return found
    cached = keras_cache_dir() / "fer2013.csv"
    if cached.is_file():
        return _fer_from_csv(cached)
    not_found = (f"FER2013 was not found in {directory} (looked for fer2013.npz, fer2013.csv, fer2013.csv.gz and "
                 "train/ + test/ image folders)")
    fix = ("download fer2013.csv from Kaggle's 'Challenges in Representation Learning: Facial Expression "
           "Recognition' and put it there, or pass --data-dir")
    if not download:
        raise DataError(f"{not_found}; {fix}")
    try:
        path = download_fer2013(keras_cache_dir())
    except DataError as error:
        raise DataError(f"{not_found} and {error}; {fix}") from None
    return _fer_from_csv(path)


def _find_fer2013(directory: Path) -> Dataset | None:
    candidates = [directory / "fer2013.npz", directory / "fer2013.csv", directory / "fer2013.csv.gz",
                  directory / "fer2013", directory]
    for path in candidates:
        if path.suffix == ".npz" and path.is_file():
            return _fer_from_npz(path)
        if path.name.endswith((".csv", ".csv.gz")) and path.is_file():
            return _fer_from_csv(path)
        if path.is_dir() and (path / "train").is_dir():
            return _fer_from_folders(path)
    return None


def download_fer2013(cache_dir: Path, handle: str = FER2013_KAGGLE_HANDLE) -> Path:
    """Fetches ``fer2013.csv`` with ``kagglehub`` (public data sets need no sign-in), checks it, and
    stores it as ``cache_dir/fer2013.csv`` through a temporary file and a rename: a failed or
    interrupted download, or a file that fails the check, leaves nothing in ``cache_dir``.
    """
    print(f"FER2013: downloading the Kaggle data set {handle} (about 300 MB) into {cache_dir}", flush=True)
    try:
        import kagglehub

        source = Path(kagglehub.dataset_download(handle))
    except Exception as error:  # offline, Kaggle down or the handle gone: kagglehub raises many types
        raise DataError(f"the download of Kaggle's {handle} failed ({download_cause(error)})") from None
    found = [source] if source.is_file() else sorted(source.rglob("fer2013.csv"))
    if not found:
        raise DataError(f"the Kaggle data set {handle} has no fer2013.csv")
    target = cache_dir / "fer2013.csv"
    try:  # a folder that cannot be written or a full disk is already one line (UserError) from atomic_path
        with atomic_path(target, suffix=".csv.part", needed=found[0].stat().st_size) as tmp:
            shutil.copyfile(found[0], tmp)
            _verify_fer2013_csv(Path(tmp), handle)
    except OSError as error:
        raise DataError(f"fer2013.csv could not be stored in {cache_dir} ({error.strerror or error}); "
                        "free some disk space or set KERAS_HOME") from None
    return target


def _verify_fer2013_csv(path: Path, handle: str) -> None:
    if sha256(path) == FER2013_CSV_SHA256:
        return
    try:
        with open(path, newline="") as handle_file:
            x, y, usage = parse_fer2013_csv(handle_file, path)
    except (DataError, OSError, UnicodeDecodeError):
        digest = None
    else:
        digest = fer2013_content_sha256(x, y, usage)
    if digest != FER2013_CONTENT_SHA256:
        raise DataError(f"the fer2013.csv of Kaggle's {handle} fails its checksum (not the original 35,887 "
                        "rows); nothing was stored")


def fer2013_content_sha256(x: np.ndarray, y: np.ndarray, usage: np.ndarray) -> str:
    """sha256 over the faces, labels and Usage values, independent of the csv's line ends."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    digest.update(np.asarray(y, dtype=np.uint8).tobytes())
    digest.update("\n".join(np.asarray(usage).astype(str)).encode())
    return digest.hexdigest()


def _fer_dataset(path: Path, x: np.ndarray, y: np.ndarray, usage: np.ndarray, checksum: str) -> Dataset:
    unknown = sorted(set(np.unique(usage).tolist()) - set(FER_SPLITS))
    if unknown:
        raise DataError(f"{path}: unknown Usage values {unknown}; expected {', '.join(FER_SPLITS)}")
    splits = {s: (x[usage == s], y[usage == s].astype(np.int64)) for s in FER_SPLITS if np.any(usage == s)}
    return Dataset("fer2013", splits, {path.name: checksum}, str(path))


def _fer_from_npz(path: Path) -> Dataset:
    arrays = _read_npz(path, ("x", "y", "usage"))
    x, y, usage = arrays["x"], arrays["y"], arrays["usage"].astype(str)
    _check_images(path, "all", x, y, (48, 48), len(FER_CLASSES))
    return _fer_dataset(path, x, y, usage, sha256(path))


def parse_fer2013_csv(lines, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses Kaggle's fer2013.csv text; a bad row raises DataError naming its line and the fix."""
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ["emotion", "pixels"]:
        raise _bad_line(path, 1, f"is {','.join(header)!r}; expected the header 'emotion,pixels,Usage'")
    images, labels, usages = [], [], []
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < 2:
            raise _bad_line(path, line_number, f"has {len(row)} column(s); expected emotion,pixels,Usage")
        try:
            label = int(row[0])
        except ValueError:
            raise _bad_line(path, line_number, f"has emotion {row[0]!r}; expected an integer 0-6") from None
        if not 0 <= label < len(FER_CLASSES):
            raise _bad_line(path, line_number, f"has emotion {label}; expected 0-6 ({', '.join(FER_CLASSES)})")
        pixels = np.array(row[1].split(), dtype=np.int32)
        if pixels.size != FER_PIXELS:
            raise _bad_line(path, line_number, f"has {pixels.size} pixels; expected {FER_PIXELS} (48x48)")
        if pixels.min() < 0 or pixels.max() > 255:
            raise _bad_line(path, line_number, "has pixel values outside 0-255")
        images.append(pixels.astype(np.uint8).reshape(48, 48))
        labels.append(label)
        usages.append(row[2].strip() if len(row) > 2 else "Training")
    if not images:
        raise DataError(f"{path} has a header but no rows; download fer2013.csv again")
    return np.stack(images), np.array(labels, dtype=np.uint8), np.array(usages)


def _bad_line(path: Path, line_number: int, problem: str) -> DataError:
    # Without the file, load_fer2013 looks in the Keras cache and then downloads Kaggle's csv there.
    return DataError(f"{path}: line {line_number} {problem}; fix that line, or delete {path.name} to use the "
                     "original (the Keras cache's, else a download)")


def _fer_from_csv(path: Path) -> Dataset:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", newline="") as handle:
                x, y, usage = parse_fer2013_csv(handle, path)
        else:
            with open(path, newline="") as handle:
                x, y, usage = parse_fer2013_csv(handle, path)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise DataError(f"{path} could not be read ({error}); download it again") from None
    return _fer_dataset(path, x, y, usage, sha256(path))


def _fer_from_folders(root: Path) -> Dataset:
    import cv2

    images, labels, usages = [], [], []
    digest = hashlib.sha256()
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if split_dir.name.lower() not in FOLDER_SPLITS:
            continue
        for emotion_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = _emotion_label(emotion_dir)
            for image_path in sorted(emotion_dir.iterdir()):
                if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                raw = image_path.read_bytes()
                digest.update(raw)
                image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise DataError(f"{image_path} is not a readable image; remove or replace it")
                if image.shape != (48, 48):
                    image = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
                images.append(image)
                labels.append(label)
                # Kaggle file names keep the csv's Usage ("PublicTest_123.jpg"); prefer it to the folder.
                prefix = image_path.stem.split("_")[0]
                usages.append(prefix if prefix in FER_SPLITS else FOLDER_SPLITS[split_dir.name.lower()])
    if not images:
        raise DataError(f"{root} has train/ and test/ folders but no .png or .jpg images in <emotion>/ sub-folders")
    return _fer_dataset(root, np.stack(images), np.array(labels, np.uint8), np.array(usages), digest.hexdigest())


def _emotion_label(folder: Path) -> int:
    name = folder.name.lower()
    if name in FER_CLASSES:
        return FER_CLASSES.index(name)
    if name.isdigit() and int(name) < len(FER_CLASSES):
        return int(name)
    raise DataError(f"unknown emotion folder {str(folder)!r}; expected one of {', '.join(FER_CLASSES)} (or 0-6)")
