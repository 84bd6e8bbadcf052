"""Run folders and their reproducibility files: config.json, metrics.json, report.md, REPORT.md."""

from __future__ import annotations

import datetime
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from common.errors import UserError
from common.files import FolderLock, write_atomic
from trainer.profiler import profile_table

PACKAGES = ("keras", "tensorflow", "tensorboard", "keras-tuner", "numpy", "opencv-python-headless", "rich", "typer")


def new_run_dir(task_dir: Path, run_name: str | None, resume: bool, exclusive: bool = False) -> Path:
    """``logs/<task>/<run-name>``; resuming without a name continues the newest run that has checkpoints.

    Resuming a named run that does not exist, or one that is no training, is an error listing the
    trainings that do exist (a misspelt name would otherwise start a new run in silence); resuming
    without a name when no run has a checkpoint starts a new one, which the Trainer notes in one line.
    ``exclusive``: a new run refuses a named folder that already holds a run, so two runs never mix
    their checkpoints and event files in one folder.
    """
    if run_name:
        folder = task_dir / run_name
        if resume and not folder.is_dir():
            raise UserError(f"--resume: there is no run {run_name!r} in {task_dir} to resume; "
                            f"{_existing_runs(task_dir, f'drop --resume to start {run_name!r}')}")
        if resume and run_kind(folder) != "fit":
            # The folder is taken: a new run needs another name as well as no --resume.
            fresh = f"drop --resume and start a new run with another --run-name, e.g. --run-name {_free_name(folder)}"
            raise UserError(f"--resume: {folder} holds a {run_kind(folder)} run, which has nothing to resume; "
                            f"{_existing_runs(task_dir, fresh)}")
        if exclusive and not resume and holds_a_run(folder):
            raise UserError(_taken(folder))
        return folder
    if resume:
        # Studies keep their models' checkpoints in sub-folders of the run: look at any depth.
        indexes = [*task_dir.glob("*/**/checkpoints/checkpoint"), *task_dir.glob("*/**/checkpoints/ckpt-*.index")]
        if indexes:
            newest = max(indexes, key=lambda p: p.stat().st_mtime)
            return task_dir / newest.relative_to(task_dir).parts[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = task_dir / stamp, 1
    while candidate.exists():
        n += 1
        candidate = task_dir / f"{stamp}-{n}"
    return candidate


def holds_a_run(folder: Path) -> bool:
    """Whether a run wrote into ``folder``: anything but the lock file, and the other workers' sub-folders
    (which a worker of this same job may create before the chief looks)."""
    return folder.is_dir() and any(p.name not in (".lock", "workers") for p in folder.iterdir())


def run_kind(run_dir: Path) -> str:
    """What made a run folder: ``fit``, ``test`` or ``lr-find``, as recorded in its metrics.json or config.json;
    a folder from before the record by its files (lr_find.json: a sweep; results without a config: a test)."""
    for name in ("metrics.json", "config.json"):
        kind = _read_json(run_dir / name).get("kind")
        if isinstance(kind, str):
            return kind
    if (run_dir / "lr_find.json").exists():
        return "lr-find"
    if (run_dir / "metrics.json").exists() and not (run_dir / "config.json").exists():
        return "test"
    return "fit"


def _taken(folder: Path) -> str:
    lock = FolderLock(folder)
    try:
        holder = lock.acquire()  # a probe: who holds it, if anyone
    except OSError:  # a folder this user cannot write: the message below still names it
        holder = None
    lock.release()
    if holder is not None:
        who = f"process {holder}" if holder else "another process"
        return f"the run folder {folder} is in use by {who}; wait for it to end, or pass another --run-name"
    kind, free = run_kind(folder), _free_name(folder)
    if kind == "fit":
        return (f"the run folder {folder} already holds a training; continue it with --resume, or start a new "
                f"run with another --run-name, e.g. --run-name {free}")
    return f"the run folder {folder} already holds a {kind} run; pass another --run-name, e.g. --run-name {free}"


def _free_name(folder: Path) -> str:
    n = 2
    while (folder.parent / f"{folder.name}-{n}").exists():
        n += 1
    return f"{folder.name}-{n}"


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _existing_runs(task_dir: Path, fresh: str, shown: int = 10) -> str:
    """The trainings a --resume could continue, newest first, and ``fresh``: how to start a new run instead."""
    folders = sorted((p for p in task_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    runs = [p for p in folders if run_kind(p) == "fit"]
    others = len(folders) - len(runs)
    left_out = f"; {others} test or lr-find run(s) left out: they have nothing to resume" if others else ""
    if not runs:
        return f"there is no training at all yet: {fresh}{left_out}"
    names = ", ".join(p.name for p in runs[:shown]) + (f" and {len(runs) - shown} more" if len(runs) > shown else "")
    return f"its trainings, newest first: {names} (pass one to --run-name, or {fresh}){left_out}"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_config(trainer, task) -> dict:
    return {
        "task": task.name,
        "run": trainer.run_dir.name,
        "kind": getattr(trainer, "run_kind", None) or "fit",
        "command": " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0].endswith("cli.py") else None,
        "trainer": trainer.config.to_dict(),
        "task_config": task.config_dict(),
        "seed": trainer.config.seed,
        "strategy": trainer.config.strategy,
        "replicas": trainer.strategy.num_replicas_in_sync,
        "packages": package_versions(),
        "data": task.data_checksums(),
    }


def write_run_config(trainer, task) -> None:
    """Every run's config.json; a training (fit, lr-find) also logs it and its hparams to TensorBoard."""
    if not trainer.is_chief:
        return
    config = run_config(trainer, task)
    write_atomic(trainer.run_dir / "config.json", json.dumps(config, indent=2, default=str))
    if config["kind"] == "test":  # an evaluation's folder keeps test/ events only: no train/ for the config
        return
    trainer.logger.log_config(config)
    trainer.logger.log_hparams({"seed": trainer.config.seed, **task.hparams()}, trial_id=trainer.run_dir.name)


def write_run_results(trainer, task) -> None:
    if not trainer.is_chief:
        return
    results = {
        "kind": getattr(trainer, "run_kind", None) or "fit",
        # What a test evaluated: a run folder's checkpoint, or the task's own model file.
        "evaluated": getattr(trainer, "evaluated", None),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "fit_seconds": round(trainer.fit_seconds, 3),
        "stop_reason": getattr(trainer, "stop_reason", None),
        "profile": trainer.profiler.summary() if getattr(trainer, "profiler", None) else {},
        "metrics": dict(trainer.metrics),
        "results": task.results(trainer),
    }
    write_atomic(trainer.run_dir / "metrics.json", json.dumps(results, indent=2, default=str))
    config_path = trainer.run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else run_config(trainer, task)
    write_atomic(trainer.run_dir / "report.md", render_report(config, results, task.report_sections(trainer)))


def render_report(config: dict, results: dict, sections: list[tuple[str, str]]) -> str:
    lines = [f"# {config['task']} run {config['run']}", ""]
    if config.get("command"):
        lines += ["Reproduce with:", "", f"    {config['command']}", ""]
    lines += [f"Seed {config['seed']}, strategy {config['strategy']} ({config['replicas']} replica(s)).", ""]
    lines += ["## Results", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in results["metrics"].items()]
    lines += ["", f"Epochs {results['epochs']}, steps {results['global_step']}, "
              f"training time {results['fit_seconds']:.1f} s.", ""]
    if results.get("stop_reason"):
        lines += [f"Stopped: {results['stop_reason']}.", ""]
    if results.get("profile"):
        lines += ["## Profile (--profiler simple)", "", profile_table(results["profile"], results["fit_seconds"]), "",
                  "Sections nest: validation includes its own callbacks, and callbacks include the hooks fired "
                  "inside validation.", ""]
    for title, body in sections:
        lines += [f"## {title}", "", body.rstrip(), ""]
    lines += ["## Configuration", "", "```json", json.dumps(
        {"trainer": config["trainer"], "task": config["task_config"]}, indent=2, default=str), "```", ""]
    lines += ["## Data", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in config["data"].items()] or ["| (none) | |"]
    lines += ["", "## Packages", "", ", ".join(f"{k} {v}" for k, v in config["packages"].items()), ""]
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def gather_reports(logdir: Path) -> Path:
    """Writes ``<logdir>/REPORT.md``: the trainings with their config and headline metrics, then the test-only
    runs and the learning-rate range tests, each in a table of its own."""
    rows: dict[str, list[str]] = {"fit": [], "test": [], "lr-find": []}
    for metrics_path in sorted(logdir.glob("*/*/metrics.json")):
        run_dir = metrics_path.parent
        results = _read_json(metrics_path)
        config = _read_json(run_dir / "config.json")
        kind = run_kind(run_dir)
        link = f"| {run_dir.parent.name} | [{run_dir.name}]({run_dir.relative_to(logdir)}/report.md) |"
        if kind == "lr-find":
            sweep = _read_json(run_dir / "lr_find.json")
            suggested = sweep.get("suggestion")
            rows[kind].append(f"{link} {len(sweep.get('rates', []))} | "
                              f"{f'{suggested:.2e}' if isinstance(suggested, float) else 'none'} |")
            continue
        metrics = results.get("metrics", {})
        prefixes = ("test_",) if kind == "test" else ("val_", "test_")
        headline = ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if k.startswith(prefixes))
        if kind == "test":
            rows["test"].append(f"{link} {results.get('evaluated') or ''} | {headline} |")
        else:
            rows["fit"].append(f"{link} {config.get('seed', '')} | {results.get('epochs', '')} | {headline} |")
    if not any(rows.values()):
        raise FileNotFoundError(f"no finished runs (metrics.json) under {logdir}; run `python cli.py fit TASK` first")
    lines = ["# Runs", ""]
    lines += _table("Trainings", ("task", "run", "seed", "epochs", "validation and test metrics"), rows["fit"])
    lines += _table("Tests", ("task", "run", "evaluated", "test metrics"), rows["test"])
    lines += _table("Learning-rate range tests", ("task", "run", "steps", "suggested rate"), rows["lr-find"])
    path = logdir / "REPORT.md"
    write_atomic(path, "\n".join(lines))
    return path


def _table(title: str, header: tuple[str, ...], rows: list[str]) -> list[str]:
    if not rows:
        return []
    return [f"## {title}", "", f"| {' | '.join(header)} |", "|" + "---|" * len(header), *rows, ""]
