"""Run folders and their reproducibility files: config.json, metrics.json, report.md, REPORT.md."""

from __future__ import annotations

import datetime
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from common.errors import UserError
from common.files import write_atomic
from trainer.profiler import profile_table

PACKAGES = ("keras", "tensorflow", "tensorboard", "keras-tuner", "numpy", "opencv-python-headless", "rich", "typer")


def new_run_dir(task_dir: Path, run_name: str | None, resume: bool) -> Path:
    """``logs/<task>/<run-name>``; resuming without a name continues the newest run that has checkpoints.

    Resuming a named run that does not exist is an error listing the runs that do (a misspelt name
    would otherwise start a new run in silence); resuming without a name when no run has a
    checkpoint starts a new one, which the Trainer notes in one line.
    """
    if run_name:
        if resume and not (task_dir / run_name).is_dir():
            raise UserError(f"--resume: there is no run {run_name!r} in {task_dir} to resume; "
                            f"{_existing_runs(task_dir, run_name)}")
        return task_dir / run_name
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


def _existing_runs(task_dir: Path, run_name: str, shown: int = 10) -> str:
    runs = sorted((p for p in task_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    if not runs:
        return f"there is no run at all yet: drop --resume to start {run_name!r}"
    names = ", ".join(p.name for p in runs[:shown]) + (f" and {len(runs) - shown} more" if len(runs) > shown else "")
    return f"its runs, newest first: {names} (pass one to --run-name, or drop --resume to start {run_name!r})"


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
    if not trainer.is_chief:
        return
    config = run_config(trainer, task)
    write_atomic(trainer.run_dir / "config.json", json.dumps(config, indent=2, default=str))
    trainer.logger.log_config(config)
    trainer.logger.log_hparams({"seed": trainer.config.seed, **task.hparams()}, trial_id=trainer.run_dir.name)


def write_run_results(trainer, task) -> None:
    if not trainer.is_chief:
        return
    results = {
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
    """Writes ``<logdir>/REPORT.md``: one row per run with its task, config and headline metrics."""
    rows = []
    for metrics_path in sorted(logdir.glob("*/*/metrics.json")):
        run_dir = metrics_path.parent
        results = json.loads(metrics_path.read_text())
        config_path = run_dir / "config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        headline = ", ".join(f"{k} {_fmt(v)}" for k, v in results.get("metrics", {}).items()
                             if k.startswith(("val_", "test_")))
        rows.append(f"| {run_dir.parent.name} | [{run_dir.name}]({run_dir.relative_to(logdir)}/report.md) | "
                    f"{config.get('seed', '')} | {results.get('epochs', '')} | {headline} |")
    if not rows:
        raise FileNotFoundError(f"no finished runs (metrics.json) under {logdir}; run `python cli.py fit TASK` first")
    text = "\n".join(["# Runs", "", "| task | run | seed | epochs | validation and test metrics |",
                      "|---|---|---|---|---|", *rows, ""])
    path = logdir / "REPORT.md"
    write_atomic(path, text)
    return path
