"""Runs survive damaged checkpoints, full disks, power cuts, kills and a second writer."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from common.files import DiskFullError, make_dirs, temp_file_beside, write_atomic
from tasks.toy.task import ToyTask
from trainer import Trainer
from trainer.checkpoint import PAUSE_ENV, CheckpointIO

ROOT = Path(__file__).resolve().parents[2]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, **kwargs)


def one_error_line(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {start}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def folder_listing(folder: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def two_checkpoints(folder: Path) -> tuple[CheckpointIO, list]:
    """ckpt-1 and ckpt-2 of the toy model with different weights; returns the weights of each."""
    model = ToyTask().build_model()
    io, saved = CheckpointIO(folder, model), []
    for number in (1, 2):
        model.set_weights([np.full(w.shape, number, w.dtype) for w in model.get_weights()])
        saved.append(model.get_weights())
        io.save({"epoch": number}, number)
    return io, saved


# --- 1. a damaged newest checkpoint --------------------------------------------------------------
def _truncate_data(folder: Path) -> None:
    data = next(folder.glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:100])


def _garble_index(folder: Path) -> None:
    (folder / "ckpt-2.index").write_bytes(b"\x00garbage" * 8)


def _remove_data(folder: Path) -> None:
    next(folder.glob("ckpt-2.data-*")).unlink()


def _cut_state(folder: Path) -> None:
    (folder / "state-2.json").write_text('{"epoch": ')


@pytest.mark.parametrize("damage", [_truncate_data, _garble_index, _remove_data, _cut_state])
def test_restore_falls_back_to_the_previous_checkpoint_and_its_own_state(damage, tmp_path, capsys):
    _, saved = two_checkpoints(tmp_path)
    damage(tmp_path)
    keras.backend.clear_session()
    fresh = ToyTask().build_model()
    state = CheckpointIO(tmp_path, fresh).restore()
    assert state == {"epoch": 1}
    for restored, expected in zip(fresh.get_weights(), saved[0], strict=True):
        np.testing.assert_array_equal(restored, expected)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: ") and "ckpt-2 (" in warning[0]
    assert "restored ckpt-1 instead" in warning[0]


def test_resume_after_a_truncated_checkpoint_ends_like_an_uninterrupted_run(trainer_config, tmp_path, capsys):
    straight = Trainer(trainer_config(max_epochs=3, run_name="straight"))
    straight.fit(ToyTask())
    Trainer(trainer_config(max_epochs=2, run_name="cut")).fit(ToyTask())
    _truncate_data(tmp_path / "logs/toy/cut/checkpoints")
    keras.backend.clear_session()
    resumed = Trainer(trainer_config(max_epochs=3, run_name="cut", resume=True))
    resumed.fit(ToyTask())
    assert "IndexError: Read less bytes than requested" in capsys.readouterr().err
    assert resumed.current_epoch == 3 and resumed.global_step == straight.global_step
    assert resumed.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], rel=1e-5)


def test_no_readable_checkpoint_is_one_line_and_exit_2_and_deletes_nothing(trainer_config, tmp_path):
    logdir = tmp_path / "logs"
    Trainer(trainer_config(max_epochs=2, run_name="a", seed=42)).fit(ToyTask())
    folder = logdir / "toy/a/checkpoints"
    for data in folder.glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    before = folder_listing(folder)
    result = cli("fit", "toy", "--max-epochs", "3", "--logdir", logdir, "--run-name", "a", "--resume")
    one_error_line(result, f"no checkpoint in {folder} could be read: ckpt-2 (IndexError")
    assert "ckpt-1 (IndexError" in result.stderr
    assert folder_listing(folder) == before


# --- 2. --resume of a run that does not exist ----------------------------------------------------
def test_resume_of_a_missing_run_names_it_and_lists_the_runs(trainer_config, tmp_path):
    runs = tmp_path / "logs/toy"
    (runs / "first").mkdir(parents=True)
    with pytest.raises(UserError) as caught:
        Trainer(trainer_config(run_name="typo", resume=True)).fit(ToyTask())
    assert str(caught.value) == (f"--resume: there is no run 'typo' in {runs} to resume; its trainings, newest first: "
                                 "first (pass one to --run-name, or drop --resume to start 'typo')")
    assert sorted(p.name for p in runs.iterdir()) == ["first"]


def test_resume_with_nothing_to_resume_starts_afresh_with_one_note(trainer_config, tmp_path, capsys):
    from trainer.report import new_run_dir

    with pytest.raises(UserError, match="there is no training at all yet: drop --resume to start 'typo'"):
        new_run_dir(tmp_path / "logs/toy", "typo", resume=True)
    trainer = Trainer(trainer_config(max_epochs=1, resume=True))
    trainer.fit(ToyTask())
    assert trainer.current_epoch == 1 and trainer.run_dir.parent == tmp_path / "logs/toy"
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    # The folder is the one this run just made: the note names where it looked instead.
    assert notes == [f"note: --resume found no run with a checkpoint in {tmp_path / 'logs/toy'}; training a new "
                     "run from epoch 1"]

    (tmp_path / "logs/toy/started").mkdir()
    named = Trainer(trainer_config(max_epochs=1, run_name="started", resume=True))
    named.fit(ToyTask())
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: nothing to resume in {named.run_dir} (no checkpoint yet); training from epoch 1"]


def test_resume_of_a_run_at_its_max_epochs_says_why_it_trains_nothing(trainer_config, tmp_path, capsys):
    Trainer(trainer_config(max_epochs=2, run_name="done")).fit(ToyTask())
    capsys.readouterr()
    trainer = Trainer(trainer_config(max_epochs=2, run_name="done", resume=True))
    trainer.fit(ToyTask())
    assert trainer.current_epoch == 2
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {trainer.run_dir} has trained 2 epoch(s), --max-epochs 2: nothing to train; raise "
                     "--max-epochs to continue, e.g. --max-epochs 4"]


# --- 3. folders that cannot be written -----------------------------------------------------------
def test_a_log_folder_under_a_file_is_a_user_error(trainer_config, tmp_path):
    blocker = tmp_path / "hostname"
    blocker.write_text("not a folder")
    with pytest.raises(UserError) as caught:
        Trainer(trainer_config(logdir=str(blocker / "x"), run_name="r")).fit(ToyTask())
    assert str(caught.value) == (f"cannot write to the folder {blocker / 'x/toy/r'}: {blocker} is a file, not a "
                                 "folder; pass a --logdir you can write to")


def test_model_and_recording_folders_that_cannot_be_made_are_user_errors(tmp_path):
    from trainer.export import save_model_atomic

    blocker = tmp_path / "models"
    blocker.write_text("a file where the models folder should be")
    with pytest.raises(UserError, match=f"{blocker} is a file, not a folder"):
        save_model_atomic(ToyTask().build_model(), blocker / "toy.h5")
    with pytest.raises(UserError, match=f"{blocker} is a file, not a folder"):
        temp_file_beside(blocker / "predictions.jsonl")
    with pytest.raises(UserError, match="cannot write to the folder"):
        make_dirs(blocker / "cache")


def test_a_data_cache_folder_that_cannot_be_made_is_a_user_error(tmp_path, monkeypatch):
    import types

    from data.datasets import download_fer2013

    downloaded = tmp_path / "kaggle/fer2013.csv"
    downloaded.parent.mkdir()
    downloaded.write_text("emotion,pixels,Usage\n")
    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=lambda handle: downloaded))
    blocker = tmp_path / "keras"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(UserError, match=f"cannot write to the folder {blocker / 'datasets'}: {blocker} is a file"):
        download_fer2013(blocker / "datasets")


# --- 4. durable writes ---------------------------------------------------------------------------
@pytest.fixture
def disk_events(monkeypatch):
    """Records fsync (by path) and rename calls in the order they happen."""
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, disk_events):
    write_atomic(tmp_path / "config.json", "{}")
    (_, tmp), rename, folder = disk_events
    assert rename[0] == "rename" and rename[1] == tmp and rename[2] == str(tmp_path / "config.json")
    assert folder == ("fsync", str(tmp_path))


def test_model_export_is_flushed_before_its_rename(tmp_path, disk_events):
    from trainer.export import save_model_atomic

    save_model_atomic(ToyTask().build_model(), tmp_path / "toy.h5")
    renames = [e for e in disk_events if e[0] == "rename"]
    assert len(renames) == 1 and renames[0][2] == str(tmp_path / "toy.h5")
    position = disk_events.index(renames[0])
    assert disk_events[position - 1] == ("fsync", renames[0][1])
    assert disk_events[position + 1] == ("fsync", str(tmp_path))


def test_checkpoint_data_reaches_the_disk_before_the_index_names_it(tmp_path, disk_events):
    two_checkpoints(tmp_path)
    index_rename = next(i for i, e in enumerate(disk_events) if e[0] == "rename" and e[2].endswith("/checkpoint")
                        and i > next(j for j, f in enumerate(disk_events) if f[1].endswith("ckpt-2.index")))
    flushed = {Path(e[1]).name for e in disk_events[:index_rename] if e[0] == "fsync"}
    assert {"state-2.json", "ckpt-2.index", "ckpt-2.data-00000-of-00001"} <= {
        re.sub(r"^\.(state-2\.json)\..*", r"\1", name) for name in flushed}


def test_every_writer_goes_through_trainer_files():
    """Writes that bypass common/files.py (no flush, no rename, no one-line errors) are not allowed."""
    raw_write = re.compile(r"open\([^)]*[\"'][wax]b?\+?[\"']|\.write_(text|bytes)\(|os\.(replace|rename)\(|mkstemp\(|"
                           r"\.(savefig|imsave|save_weights)\((?!tmp\b|buffer\b)|\bmodel\.save\((?!tmp\b)")
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", ".venv", "build") or relative == Path("common/files.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if raw_write.search(line) and "os.devnull" not in line:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


# --- 5. a full disk ------------------------------------------------------------------------------
def test_disk_full_during_checkpoint_data_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io, saved = two_checkpoints(tmp_path)
    real_write = io._checkpoint.write

    def write_half_then_fail(prefix):
        Path(f"{prefix}.data-00000-of-00001").write_bytes(b"\x00" * 100)
        raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}_temp/part-00000; No space left on device")

    monkeypatch.setattr(io._checkpoint, "write", write_half_then_fail)
    with pytest.raises(DiskFullError) as caught:
        io.save({"epoch": 3}, 3)
    message = str(caught.value)
    assert message.startswith(f"no space left on the device of {tmp_path}: about ") and "KiB is needed" in message
    assert message.endswith("free some space, then continue with --resume")
    assert io.latest == str(tmp_path / "ckpt-2") and not list(tmp_path.glob("*-3*"))
    monkeypatch.setattr(io._checkpoint, "write", real_write)
    assert io.restore() == {"epoch": 2}


def test_disk_full_while_flushing_the_state_keeps_the_previous_checkpoint(trainer_config, tmp_path, monkeypatch):
    Trainer(trainer_config(max_epochs=1, run_name="full")).fit(ToyTask())
    folder = tmp_path / "logs/toy/full/checkpoints"
    real_fsync = os.fsync

    def fsync(fd):
        if "state-2.json" in os.readlink(f"/proc/self/fd/{fd}"):
            raise ENOSPC  # ext4 reports a full disk at fsync when it allocates late
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    keras.backend.clear_session()
    with pytest.raises(DiskFullError, match=f"no space left on the device of {folder}: about"):
        Trainer(trainer_config(max_epochs=2, run_name="full", resume=True)).fit(ToyTask())
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index", "state-1.json"]
    keras.backend.clear_session()
    resumed = Trainer(trainer_config(max_epochs=2, run_name="full", resume=True))
    resumed.fit(ToyTask())
    assert resumed.current_epoch == 2 and "ckpt-2" in (folder / "checkpoint").read_text()


def test_disk_full_during_export_keeps_the_previous_model(tmp_path, monkeypatch):
    from trainer.export import save_model_atomic

    model = ToyTask().build_model()
    target = save_model_atomic(model, tmp_path / "toy.h5")
    before = target.read_bytes()

    def save_half_then_fail(path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF" * 100)
        raise OSError(errno.ENOSPC, "Unable to synchronously create file (No space left on device)")

    monkeypatch.setattr(model, "save", save_half_then_fail)
    with pytest.raises(DiskFullError, match=f"no space left on the device of {tmp_path}: about .* is needed"):
        save_model_atomic(model, target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["toy.h5"]


def test_disk_full_anywhere_else_in_a_run_is_one_line_naming_the_run_folder(trainer_config, tmp_path, monkeypatch):
    from trainer.logger import TensorBoardLogger

    def flush(self):
        raise tf.errors.ResourceExhaustedError(None, None, "events.out.tfevents; No space left on device")

    monkeypatch.setattr(TensorBoardLogger, "flush", flush)
    with pytest.raises(DiskFullError) as caught:
        Trainer(trainer_config(run_name="events")).fit(ToyTask())
    assert str(caught.value).startswith(f"no space left on the device of {tmp_path / 'logs/toy/events'}: ")


def test_a_save_clears_what_writes_cut_short_left_behind(tmp_path):
    io, _ = two_checkpoints(tmp_path)
    leftovers = [tmp_path / ".state-3.json.x1y2.json", tmp_path / ".checkpoint.a1b2", tmp_path / "ckpt-3_temp/part"]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_text("cut short")
    io.save({"epoch": 4}, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-4.data-00000-of-00001", "ckpt-4.index",
        "state-2.json", "state-4.json"]


# --- 6 and 7. a killed run resumes; a second writer is refused meanwhile --------------------------
def test_sigkill_between_checkpoint_data_and_index_then_resume_while_a_second_writer_is_refused(tmp_path):
    logdir, run = tmp_path / "logs", ["--run-name", "k", "--progress", "plain"]
    fit = [sys.executable, str(ROOT / "cli.py"), "fit", "toy", "--max-epochs", "3", "--logdir", str(logdir), *run]
    first = subprocess.Popen(fit, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, PAUSE_ENV: "2", "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        while not (lines and lines[-1].startswith("paused after writing the data of checkpoint 2")):
            lines.append(first.stderr.readline())
            assert lines[-1], "".join(lines)  # the process ended before it paused
        second = cli("fit", "toy", "--logdir", logdir, *run)
        one_error_line(second, f"the run folder {logdir / 'toy/k'} is in use by process {first.pid}; wait ")
    finally:
        first.send_signal(signal.SIGKILL)
        crashed_stdout = first.communicate(timeout=60)[0]
    assert first.returncode == -signal.SIGKILL
    folder = logdir / "toy/k/checkpoints"
    assert next(folder.glob("ckpt-2.data-*")).exists() and '"ckpt-1"' in (folder / "checkpoint").read_text()

    resumed = cli("fit", "toy", "--max-epochs", "3", "--logdir", logdir, "--resume", *run)
    assert resumed.returncode == 0, resumed.stderr
    epoch_2 = re.search(r"\[toy\] epoch 2/3 \S+ (.*)", crashed_stdout).group(1)
    assert "epoch 1/3" not in resumed.stdout and re.search(r"epoch 2/3 \S+ " + re.escape(epoch_2), resumed.stdout)
    assert json.loads((logdir / "toy/k/metrics.json").read_text())["epochs"] == 3


def test_a_resume_while_another_process_holds_the_run_is_refused_until_it_is_gone(trainer_config, tmp_path):
    run_dir = tmp_path / "logs/toy/held"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from common.files import FolderLock; FolderLock(sys.argv[2]).acquire();"
                               "print('held', flush=True); time.sleep(120)", str(ROOT), str(run_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UserError, match=f"the run folder {run_dir} is in use by process {holder.pid}; wait"):
            Trainer(trainer_config(max_epochs=1, run_name="held", resume=True)).fit(ToyTask())
        assert not (run_dir / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    trainer, task = Trainer(trainer_config(max_epochs=1, run_name="held", resume=True)), ToyTask()
    trainer.fit(task)
    trainer.fit(task)  # the lock went with the first fit: the same Trainer may fit again
    assert trainer.current_epoch == 1 and (run_dir / "checkpoints/checkpoint").exists()
