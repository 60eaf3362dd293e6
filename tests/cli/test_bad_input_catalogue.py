"""The bad-input catalogue (docs/reliability.md, "Bad input"): every case through the real CLI entry.

Each case must end with exit code 2, exactly one ``error: ...`` line on stderr naming the problem, no traceback,
and nothing left behind: no new file or folder anywhere under the test's folders (the working directory, where
``runs/`` and ``export/`` would go, and the inputs, whose run directories a bad resume must not touch). The
whole config is checked before a run or training directory is created.

Cases already in ``test_cli_errors.py`` (unknown space/searcher/evaluator/dataset/runner/backend, unknown key,
``budget.trials=many``, missing table or data root, bad genotypes for ``nas show``) are not repeated here; that
file checks them for leftovers too. The in-process ``main()`` is what the ``nas`` script runs
(``nas = "nas.cli.main:main"``); ``test_end_to_end_in_a_real_process`` runs a few cases as real processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import nas
from nas.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"


@dataclass(frozen=True)
class Case:
    """One bad input: the command (``{in}`` is the inputs folder, ``{table}`` a whole synthetic NB201 table),
    a fragment the error line must contain, and modules to hide (an optional extra that is not installed)."""

    id: str
    args: tuple[str, ...]
    message: str
    hide: tuple[str, ...] = ()


def case(id: str, command: str, message: str, hide: tuple[str, ...] = ()) -> Case:
    """A ``Case`` from a command line split on spaces (no argument here holds a space)."""
    return Case(id, tuple(command.split()), message, hide)


FAST = "evaluator=cost budget.trials=1"  # should a check go missing, the search that starts is over in a second

CATALOGUE = [
    # overrides of `nas search`: wrong types, out-of-range values, bad objectives, mismatched groups
    case("seed-not-integer", f"search seed=abc {FAST}", "seed must be a non-negative integer, got 'abc'"),
    case("seed-negative", f"search seed=-1 {FAST}", "seed must be a non-negative integer, got -1"),
    case("workers-not-integer", f"search runner.workers=two {FAST}", "runner.workers must be a non-negative integer"),
    case("max-retries-negative", f"search runner=ray runner.max_retries=-1 {FAST}",
         "runner.max_retries must be a non-negative integer, got -1"),
    case("budget-zero", "search budget.trials=0 evaluator=cost", "budget.trials must be at least 1"),
    case("budget-negative", "search budget.trials=-3 evaluator=cost", "budget.trials must be a non-negative integer"),
    case("macs-budget-negative", f"search budget.macs=-1 {FAST}", "budget.macs must be a positive number, got -1"),
    case("objective-without-mode", f"search objective=accuracy {FAST}",
         "bad objective 'accuracy': 'accuracy' is not <metric>:max or <metric>:min"),
    case("objective-bad-mode", f"search objective=valid_accuracy:up {FAST}", "objective mode must be max or min"),
    case("objective-without-metric", f"search objective=:max {FAST}", "':max' is not <metric>:max or <metric>:min"),
    case("objectives-item-without-mode", f"search objectives=[valid_accuracy:max,params] {FAST}",
         "'params' is not <metric>:max or <metric>:min"),
    case("constraint-not-number", f"search constraints.params_max=lots {FAST}",
         "constraints.params_max must be a number, got 'lots'"),
    case("evaluator-epochs-zero", "search evaluator.epochs=0 budget.trials=1 evaluator.max_steps_per_epoch=1",
         "evaluator.epochs must be an integer >= 1, got 0"),
    case("evaluator-lr-negative", "search evaluator.lr=-1 budget.trials=1 evaluator.max_steps_per_epoch=1",
         "evaluator.lr must be a number > 0, got -1"),
    case("evaluator-batch-not-integer", "search evaluator.batch_size=abc budget.trials=1",
         "evaluator.batch_size must be an integer >= 1, got 'abc'"),
    case("searcher-option-wrong-type", f"search searcher.population_size=abc {FAST}",
         "searcher.population_size must be an integer, got 'abc'"),
    case("unknown-preset", f"search space.preset=huge {FAST}", "unknown preset 'huge' for space 'nb201'"),
    case("unknown-macro-key", f"search space.macro.bogus=1 {FAST}", "unknown setting 'space.macro.bogus'"),
    case("resolution-negative", "search dataset.resolution=-5 budget.trials=1",
         "option 'resolution' must be an integer >= 1, got -5"),
    case("searcher-for-another-space", "search searcher=bossnas space=nasnet evaluator=cost",
         "searcher bossnas needs a space that declares blocks"),
    case("tabular-on-another-space", "search evaluator=tabular space=hytra evaluator.table={table} searcher=random "
         "budget.trials=1", "evaluator=tabular looks NB201 cells up; it cannot evaluate space=hytra"),
    case("logger-unknown", f"search logger=wandb {FAST}",
         "unknown logger 'wandb'; valid choices: mlflow, none, tensorboard (several at once: "
         "logger=[tensorboard,mlflow])"),
    case("logger-several-without-list", f"search logger=tensorboard,mlflow {FAST}",
         "logger=tensorboard,mlflow: several at once are a list, e.g. logger=[tensorboard,mlflow]"),
    case("logger-needs-missing-extra", f"search logger=[tensorboard,mlflow] {FAST}",
         "logger=mlflow needs the 'tracking' extra: pip install 'nas-engine[tracking]' (it brings 'mlflow-skinny')",
         hide=("mlflow",)),
    case("logger-mlflow-unknown-uri-scheme", f"search logger=mlflow logger.mlflow.tracking_uri=nosuch://host {FAST}",
         "logger.mlflow.tracking_uri=nosuch://host: unsupported URI scheme; MLflow supports file,"),
    case("tabular-unknown-dataset", "search evaluator=tabular evaluator.table={table} evaluator.dataset=svhn "
         "budget.trials=1", "unknown evaluator.dataset 'svhn'"),
    case("run-dir-holds-a-search", "search run_dir={in}/run evaluator=cost",
         "already holds a search; continue it with"),
    # searcher=optuna: sampler and pruner classes, their keyword arguments, the study's storage
    case("optuna-sampler-unknown-class", f"search searcher=optuna searcher.sampler._target_=optuna.samplers.Bogus "
         f"{FAST}", "'optuna.samplers.Bogus' is not a class under optuna.samplers; valid choices: auto, tpe"),
    case("optuna-sampler-outside-optuna", f"search searcher=optuna searcher.sampler._target_=os.system {FAST}",
         "'os.system' is not a class under optuna.samplers"),
    case("optuna-sampler-private-module", "search searcher=optuna "
         f"searcher.sampler._target_=optuna.samplers._tpe.sampler.TPESampler {FAST}",
         "'optuna.samplers._tpe.sampler.TPESampler' is not a class under optuna.samplers"),
    case("optuna-sampler-is-a-pruner", f"search searcher=optuna searcher.sampler._target_=optuna.pruners.MedianPruner "
         f"{FAST}", "'optuna.pruners.MedianPruner' is not a class under optuna.samplers"),
    case("optuna-sampler-unknown-name", f"search searcher=optuna searcher.sampler=bogus {FAST}",
         "unknown optuna sampler 'bogus'; valid choices: auto, tpe, random, nsgaii, cmaes, gp, qmc"),
    case("optuna-sampler-bad-keyword", "search searcher=optuna searcher.sampler._target_=optuna.samplers.CmaEsSampler "
         f"+searcher.sampler.n_startup=5 {FAST}",
         "searcher.sampler: CmaEsSampler does not take these arguments (got an unexpected keyword argument"),
    case("optuna-pruner-unknown-class", f"search searcher=optuna searcher.pruner._target_=optuna.pruners.Bogus {FAST}",
         "'optuna.pruners.Bogus' is not a class under optuna.pruners; valid choices: median, halving, none"),
    case("optuna-pruner-bad-value", "search searcher=optuna searcher.pruner._target_=optuna.pruners.MedianPruner "
         f"+searcher.pruner.n_startup_trials=-1 {FAST}", "Number of startup trials cannot be negative"),
    case("optuna-pruner-bad-nested-target", "search searcher=optuna searcher.pruner._target_=optuna.pruners."
         f"PatientPruner +searcher.pruner.patience=1 +searcher.pruner.wrapped_pruner._target_=os.system {FAST}",
         "'os.system' is not a class under optuna.samplers or optuna.pruners"),
    # searcher=ray_tune: search algorithm and scheduler classes, their libraries and keyword arguments
    case("ray-tune-search-alg-outside-ray", f"search searcher=ray_tune searcher.search_alg._target_=os.system {FAST}",
         "'os.system' is not a class under ray.tune.search; valid choices: optuna, random, or "
         "searcher.search_alg._target_=ray.tune.search.<Class>"),
    case("ray-tune-search-alg-unknown-class", "search searcher=ray_tune "
         f"searcher.search_alg._target_=ray.tune.search.Bogus {FAST}", "'ray.tune.search.Bogus' is not a class under"),
    case("ray-tune-search-alg-is-a-scheduler", "search searcher=ray_tune "
         f"searcher.search_alg._target_=ray.tune.schedulers.ASHAScheduler {FAST}",
         "'ray.tune.schedulers.ASHAScheduler' is not a class under ray.tune.search"),
    case("ray-tune-search-alg-library-missing", "search searcher=ray_tune "
         f"searcher.search_alg._target_=ray.tune.search.hyperopt.HyperOptSearch {FAST}",
         "searcher.search_alg: ray.tune.search.hyperopt.HyperOptSearch needs hyperopt, which is not installed: "
         "pip install hyperopt", hide=("hyperopt",)),
    case("ray-tune-search-alg-bad-keyword", "search searcher=ray_tune "
         "searcher.search_alg._target_=ray.tune.search.hyperopt.HyperOptSearch +searcher.search_alg.n_initial=2 "
         f"{FAST}", "searcher.search_alg: HyperOptSearch does not take these arguments"),
    case("ray-tune-scheduler-unknown-name", f"search searcher=ray_tune searcher.scheduler=pbt {FAST}",
         "unknown Ray Tune scheduler 'pbt'; valid choices: asha, none, or searcher.scheduler._target_="),
    case("ray-tune-scheduler-pbt", "search searcher=ray_tune "
         f"searcher.scheduler._target_=ray.tune.schedulers.PopulationBasedTraining {FAST}",
         "searcher.scheduler: PopulationBasedTraining does not apply to nas trials"),
    case("ray-tune-scheduler-bad-value", "search searcher=ray_tune searcher.scheduler._target_=ray.tune.schedulers."
         f"ASHAScheduler +searcher.scheduler.grace_period=-1 {FAST}",
         "bad option for searcher 'ray_tune': grace_period must be positive!"),
    case("optuna-storage-no-folder", f"search searcher=optuna searcher.storage=sqlite:///{{in}}/none/study.db {FAST}",
         "cannot be opened: (sqlite3.OperationalError) unable to open database file"),
    case("optuna-storage-unknown-database", f"search searcher=optuna searcher.storage=nosuchdb://host/study {FAST}",
         "searcher.storage='nosuchdb://host/study' cannot be opened: Can't load plugin: sqlalchemy.dialects:nosuchdb"),
    case("optuna-storage-not-a-database", f"search searcher=optuna searcher.storage=sqlite:///{{in}}/arch.json {FAST}",
         "cannot be opened: (sqlite3.DatabaseError) file is not a database"),
    case("optuna-journal-no-folder", f"search searcher=optuna searcher.storage={{in}}/none/study.log {FAST}",
         "/none/study.log' cannot be opened: no folder"),
    case("optuna-journal-is-a-folder", f"search searcher=optuna searcher.storage={{in}}/empty {FAST}",
         "/empty' cannot be opened:"),
    case("optuna-study-of-another-run", f"search searcher=optuna searcher.storage={{in}}/study.log "
         f"searcher.study_name=run_optuna {FAST}",
         "study.log already holds 2 trials; continue its run with resume=<run_dir>"),
    # data roots
    case("mnist-root-empty", "search dataset=mnist dataset.root={in}/empty budget.trials=1",
         "mnist: missing t10k-images-idx3-ubyte[.gz]"),
    case("mnist-root-is-a-file", "search dataset=mnist dataset.root={in}/arch.json budget.trials=1",
         "mnist: root folder"),
    case("mnist-files-corrupt", "search dataset=mnist dataset.root={in}/bad_mnist budget.trials=1",
         "bad IDX magic number"),
    case("cifar10-root-empty", "search dataset=cifar10 dataset.root={in}/empty budget.trials=1",
         "cifar10: no data in"),
    case("image-folder-root-empty", "search dataset=image_folder dataset.root={in}/empty budget.trials=1",
         "image_folder: no train/<class>/<image> files"),
    # NAS-Bench-201 table files
    case("table-missing-columns", "search evaluator=tabular evaluator.table={in}/no_columns.csv budget.trials=1",
         "is not an NB201 table: it lacks columns arch_str, cifar10_test_200ep, cifar10valid_val_12ep"),
    case("table-wrong-shape", "search evaluator=tabular evaluator.table={in}/one_row.csv budget.trials=1",
         "is not a whole NB201 table: 1 cells, expected 15625"),
    case("table-not-numbers", "search evaluator=tabular evaluator.table={in}/not_numbers.csv budget.trials=1",
         "line 2: cifar10valid_val_12ep/cifar10_test_200ep are not numbers"),
    case("table-not-text", "search evaluator=tabular evaluator.table={in}/binary.csv budget.trials=1",
         "is not an NB201 table: not a CSV text file"),
    case("table-is-a-folder", "search evaluator=tabular evaluator.table={in}/empty budget.trials=1",
         "table file not found"),
    # genotype JSON given to `nas train` / `nas export`
    case("train-genotype-unknown-space", "train {in}/unknown_space.json", "unknown space 'nasbench999'"),
    case("train-genotype-of-another-space", "train {in}/nb201_as_hytra.json", "genotype lacks decision"),
    case("train-genotype-another-version", "train {in}/version_0.json",
         "genotype is from nb201 version 0; this build reads version 1"),
    case("train-genotype-unknown-op", "train {in}/unknown_op.json", "'conv_9x9' is not one of"),
    case("train-genotype-extra-decision", "train {in}/extra_decision.json", "space 'nb201' has no decisions"),
    case("train-genotype-not-object", "train {in}/list.json", "a genotype must be a JSON object"),
    case("export-genotype-missing-decision", "export {in}/missing_decision.json format=json",
         "genotype lacks decision 'edge_1_0'"),
    case("export-genotype-not-json", "export {in}/not_json.json format=json", "is not valid JSON"),
    # `nas export` options
    case("export-unknown-format", "export {in}/arch.json format=tflite",
         "unknown format 'tflite'; valid choices: flax, json, onnx, pt2"),
    case("export-format-needs-missing-extra", "export {in}/arch.json format=onnx",
         "format=onnx needs the 'export' extra: pip install 'nas-engine[export]'", hide=("onnxruntime",)),
    case("export-flax-needs-missing-extra", "export {in}/arch.json format=flax",
         "format=flax needs the 'jax' extra: pip install 'nas-engine[jax]'", hide=("flax",)),
    case("export-flax-out-is-a-file", "export {in}/arch.json format=flax out=model.json",
         "format=flax writes a folder; out=model.json looks like a file"),
    case("export-weights-missing", "export {in}/arch.json format=pt2 weights={in}/none.safetensors",
         "no weights file:"),
    case("export-seed-not-integer", "export {in}/arch.json format=pt2 seed=abc",
         "seed must be a non-negative integer, got 'abc'"),
    case("export-unknown-option", "export {in}/arch.json fmt=onnx", "`nas export` has no option 'fmt'"),
    case("export-corrupt-training-dir", "export {in}/train_bad_arch format=json", "arch.json is corrupt (not JSON"),
    # optional extras that are not installed (pyproject.toml; nas/core/extras.py)
    case("search-jax-needs-missing-extra", f"search backend=jax {FAST}",
         "backend=jax needs the 'jax' extra: pip install 'nas-engine[jax]'", hide=("jax",)),
    case("search-ray-runner-needs-missing-extra", f"search runner=ray {FAST}",
         "runner=ray needs the 'ray' extra: pip install 'nas-engine[ray]'", hide=("ray",)),
    case("search-ray-tune-needs-missing-extra", f"search searcher=ray_tune {FAST}",
         "searcher=ray_tune needs the 'ray' extra: pip install 'nas-engine[ray]'", hide=("ray",)),
    case("search-detection-needs-missing-extra",
         "search space=fbnetv5 searcher.steps=1 searcher.warmup=0 searcher.samples=1 searcher.final_steps=1",
         "the fbnetv5 detection task (COCO mAP) needs the 'detection' extra: pip install 'nas-engine[detection]'",
         hide=("pycocotools",)),
    case("train-jax-needs-missing-extra", "train {in}/arch.json backend=jax",
         "backend=jax needs the 'jax' extra: pip install 'nas-engine[jax]'", hide=("optax",)),
    # `nas train` options and directories
    case("train-unknown-recipe", "train {in}/arch.json recipe=fast", "unknown recipe 'fast'; valid choices:"),
    case("train-unknown-backend", "train {in}/arch.json backend=tf", "unknown backend 'tf'; valid choices: torch, jax"),
    case("train-seed-not-integer", "train {in}/arch.json seed=x", "seed must be a non-negative integer, got 'x'"),
    case("train-epochs-zero", "train {in}/arch.json recipe.epochs=0", "epochs must be a positive integer, got 0"),
    case("train-unknown-recipe-field", "train {in}/arch.json recipe.bogus=1", "recipe has no field 'bogus'"),
    case("train-threads-zero", "train {in}/arch.json threads=0", "threads must be a positive integer, got '0'"),
    case("train-data-root-empty", "train {in}/arch.json dataset=mnist dataset.root={in}/empty",
         "mnist: missing t10k-images-idx3-ubyte[.gz]"),
    case("train-out-not-empty", "train {in}/arch.json out={in}/run", "exists and is not empty"),
    case("train-resume-not-a-training-dir", "train resume={in}/empty", "not a training directory"),
    case("train-resume-corrupt-arch", "train resume={in}/train_bad_arch", "arch.json is corrupt (not JSON"),
    case("train-resume-corrupt-recipe", "train resume={in}/train_bad_recipe", "recipe.yaml is corrupt (not YAML"),
    # `nas search resume=` of a foreign or corrupt directory
    case("resume-not-a-run-dir", "search resume={in}/empty", "not a run directory (no config.json)"),
    case("resume-a-training-dir", "search resume={in}/train_bad_arch", "not a run directory (no config.json)"),
    case("resume-config-not-json", "search resume={in}/run_config_not_json",
         "config.json is corrupt (not JSON"),
    case("resume-config-not-a-search", "search resume={in}/run_config_foreign",
         "config.json is not the config of a `nas search` run: it lacks space"),
    case("resume-config-unknown-space", "search resume={in}/run_unknown_space",
         "this build cannot rebuild the run's space (unknown space 'nasbench999'"),
    case("resume-config-wrong-type", "search resume={in}/run_wrong_type",
         "budget.trials must be a non-negative integer, got 'ten'"),
    case("resume-journal-another-version", "search resume={in}/run_old_version",
         "trials.jsonl: trial 0: genotype is from nb201 version 0; this build reads version 1"),
    case("resume-journal-event-incomplete", "search resume={in}/run_incomplete_event",
         "trials.jsonl: an event lacks 'genotype'"),
    case("resume-journal-not-text", "search resume={in}/run_binary_journal", "cannot resume"),
    case("resume-journal-not-objects", "search resume={in}/run_list_journal", "a line is not a JSON object"),
    case("resume-with-other-settings", "search resume={in}/run space=hytra",
         "resume= continues a run with its own config; drop space=hytra"),
    case("resume-budget-not-integer", "search resume={in}/run budget.trials=abc",
         "budget.trials must be a non-negative integer, got 'abc'"),
    case("resume-budget-zero", "search resume={in}/run budget.trials=0", "budget.trials must be at least 1"),
    # `nas report` of a foreign or corrupt directory
    case("report-no-such-dir", "report {in}/none", "not a run directory (no such directory)"),
    case("report-not-a-run-dir", "report {in}/empty", "not a run directory (no config.json)"),
    case("report-config-not-json", "report {in}/run_config_not_json", "config.json is corrupt (not JSON"),
    case("report-journal-another-version", "report {in}/run_old_version",
         "run_old_version/trials.jsonl: trial 0: genotype is from nb201 version 0; this build reads version 1"),
    case("report-journal-not-text", "report {in}/run_binary_journal", "cannot read"),
    case("report-journal-not-objects", "report {in}/run_list_journal", "a line is not a JSON object"),
    case("report-unknown-option", "report {in}/run --browser", "unknown option '--browser'"),
    # `nas search -m`: sweeps and their Hydra launcher (the sweep directory is not created)
    case("sweep-expands-to-no-jobs", f"search -m seed=range(0,0) {FAST}", "the sweep expands to no jobs"),
    case("sweep-unknown-launcher", f"search -m seed=0,1 hydra/launcher=nosuch {FAST}",
         "unknown hydra/launcher 'nosuch'; valid choices: basic, joblib"),
    case("sweep-launcher-bad-value", f"search -m seed=0,1 hydra/launcher=joblib hydra.launcher.n_jobs=x {FAST}",
         "bad value for hydra.launcher.n_jobs: Value 'x' of type 'str' could not be converted to Integer"),
    case("sweep-launcher-twice", f"search -m seed=0,1 sweep.jobs=2 hydra/launcher=basic {FAST}",
         "sweep.jobs= and hydra/launcher= (or hydra.launcher.n_jobs=) both choose how jobs run"),
    case("sweep-unused-hydra-setting", f"search -m seed=0,1 hydra.job.chdir=true {FAST}",
         "`nas search` does not use hydra.job.chdir"),
    case("hydra-setting-without-sweep", f"search hydra/launcher=joblib {FAST}",
         "hydra/launcher=joblib: Hydra's settings apply to a sweep (nas search -m ...)"),
]


def _json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def _copy_run(run: Path, dest: Path, edit_config=None, journal: str | bytes | None = None) -> None:
    shutil.copytree(run, dest)
    if edit_config is not None:
        config = json.loads((dest / "config.json").read_text())
        edit_config(config)
        _json(dest / "config.json", config)
    if isinstance(journal, bytes):
        (dest / "trials.jsonl").write_bytes(journal)
    elif journal is not None:
        (dest / "trials.jsonl").write_text(journal)


def write_inputs(folder: Path) -> Path:
    """Every bad input file and directory of the catalogue, plus a good genotype and a finished run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty").mkdir()
    genotype = nas.space("nb201").sample(0).to_json()
    _json(folder / "arch.json", genotype)
    _json(folder / "unknown_space.json", {**genotype, "space": "nasbench999"})
    _json(folder / "nb201_as_hytra.json", {**genotype, "space": "hytra"})
    _json(folder / "version_0.json", {**genotype, "version": 0})
    first = next(iter(genotype["decisions"]))
    _json(folder / "unknown_op.json", {**genotype, "decisions": {**genotype["decisions"], first: "conv_9x9"}})
    _json(folder / "extra_decision.json", {**genotype, "decisions": {**genotype["decisions"], "edge_9_9": "none"}})
    _json(folder / "missing_decision.json",
          {**genotype, "decisions": {k: v for k, v in genotype["decisions"].items() if k != first}})
    _json(folder / "list.json", [1, 2])
    (folder / "not_json.json").write_text("{not json")

    mnist = folder / "bad_mnist"
    mnist.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (mnist / stem).write_bytes(b"not an idx file")

    header = "arch_str,cifar10valid_val_12ep,cifar10_test_200ep\n"
    cell = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (folder / "no_columns.csv").write_text("a,b\n1,2\n")
    (folder / "one_row.csv").write_text(f"{header}{cell},10.0,10.0\n")
    (folder / "not_numbers.csv").write_text(f"{header}{cell},ten,10.0\n")
    (folder / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")

    bad_arch = folder / "train_bad_arch"
    bad_arch.mkdir()
    (bad_arch / "arch.json").write_text("{oops")
    (bad_arch / "recipe.yaml").write_text("recipe: {epochs: 1}\ndataset: {name: digits}\n")
    bad_recipe = folder / "train_bad_recipe"
    bad_recipe.mkdir()
    _json(bad_recipe / "arch.json", genotype)
    (bad_recipe / "recipe.yaml").write_text("recipe: [unclosed\n")

    run = folder / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["search", "evaluator=cost", "budget.trials=2", f"run_dir={run}"]) == 0
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["search", "searcher=optuna", "evaluator=cost", "budget.trials=2",
                     f"run_dir={folder / 'run_optuna'}", f"searcher.storage={folder / 'study.log'}"]) == 0
    journal = (run / "trials.jsonl").read_text()
    assert '"version": 1' in journal
    _copy_run(run, folder / "run_config_not_json")
    (folder / "run_config_not_json" / "config.json").write_text("{oops")
    _copy_run(run, folder / "run_config_foreign")
    _json(folder / "run_config_foreign" / "config.json", {"genotype": genotype})
    _copy_run(run, folder / "run_unknown_space", lambda c: c["space"].update(name="nasbench999"))
    _copy_run(run, folder / "run_wrong_type", lambda c: c["budget"].update(trials="ten"))
    _copy_run(run, folder / "run_old_version", journal=journal.replace('"version": 1', '"version": 0'))
    _copy_run(run, folder / "run_incomplete_event", journal='{"event": "finished", "trial": 0, "state": "complete"}\n')
    _copy_run(run, folder / "run_binary_journal", journal=b"\x00\xff\xfe garbage\n")
    _copy_run(run, folder / "run_list_journal", journal="[1, 2]\n")
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("catalogue") / "in")


def snapshot(*folders: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``folders``: (is a folder, size, modification time) of files; folders by name only."""
    out = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            stat = path.stat()
            out[str(path)] = (True, 0, 0) if path.is_dir() else (False, stat.st_size, stat.st_mtime_ns)
    return out


def expand(args: tuple[str, ...], inputs: Path, table: Path) -> list[str]:
    return [a.replace("{in}", str(inputs)).replace("{table}", str(table)) for a in args]


def test_the_catalogue_has_at_least_25_distinct_cases():
    assert len(CATALOGUE) >= 25
    assert len({c.id for c in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("bad", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(bad, inputs, synthetic_nb201_table, tmp_path, monkeypatch,
                                                         capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for module in bad.hide:
        monkeypatch.setitem(sys.modules, module, None)
    before = snapshot(cwd, inputs)
    code = main(expand(bad.args, inputs, synthetic_nb201_table))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert bad.message in lines[0]
    assert "Traceback" not in err + out
    after = snapshot(cwd, inputs)
    assert after == before, f"left behind or changed: {sorted(set(after.items()) ^ set(before.items()))}"


END_TO_END = ["export-format-needs-missing-extra", "search-jax-needs-missing-extra",
              "search-ray-runner-needs-missing-extra", "search-detection-needs-missing-extra",
              "resume-config-not-json", "train-genotype-another-version", "table-wrong-shape", "objective-without-mode"]


@pytest.mark.parametrize("case_id", END_TO_END)
def test_end_to_end_in_a_real_process(case_id, inputs, synthetic_nb201_table, tmp_path):
    """The ``nas`` process itself: exit status 2, one stderr line, nothing left behind."""
    bad = next(c for c in CATALOGUE if c.id == case_id)
    hide = "".join(f"sys.modules[{m!r}] = None; " for m in bad.hide)
    code = f"import sys; {hide}from nas.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = snapshot(tmp_path, inputs)
    proc = subprocess.run([sys.executable, "-c", code, *expand(bad.args, inputs, synthetic_nb201_table)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and bad.message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(tmp_path, inputs) == before


def test_every_case_is_in_the_docs():
    text = DOC.read_text()
    missing = [c.id for c in CATALOGUE if f"`{c.id}`" not in text]
    assert not missing, f"docs/reliability.md lacks {missing}"
