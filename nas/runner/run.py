"""A whole search from a resolved config: run directory, journal, loop, best/report/plot, resume."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.backends import check_device
from nas.core import extras
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.core.space import SPACES, SearchSpace
from nas.data.base import DATASETS
from nas.evaluators.base import EVALUATORS, LoadsDataset
from nas.runner import executors
from nas.runner.executors import Job, evaluate_job
from nas.runner.html.live import LiveReport
from nas.runner.journal import Journal, read_events, replay, told_sequence
from nas.runner.loop import LoopState, run_loop, trial_seed
from nas.runner.phases import run_phases
from nas.runner.plots import write_cost_accuracy_plot
from nas.runner.progress import Progress
from nas.runner.report import chosen_best, write_best, write_progress_plot, write_report
from nas.runner.warm_start import WARM_KEYS, check_warm_start, stderr_log, warm_start
from nas.searchers.base import SEARCHERS, Drive, DrivingSearcher, MultiObjective, Searcher, parse_objectives
from nas.tracking import RunInfo, build_trackers, tracking

CONFIG_FILE = "config.json"


def reads_dataset(name: str) -> bool:
    """Whether the evaluator registered as ``name`` reads the configured dataset (it is a ``LoadsDataset``: train,
    proxy, chain), so the space adapts to the data and the evaluator gets the run's backend and ``dataset``."""
    entry = EVALUATORS.get(name)
    return isinstance(entry, type) and issubclass(entry, LoadsDataset)


@dataclass
class RunSummary:
    """What a finished search returns: where it wrote, every result, and the best one."""

    run_dir: Path
    results: list[Result]
    best: Result | None
    space: SearchSpace


def _options(section: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    options = dict(section)
    return str(options.pop("name")), options


def build_space(config: dict[str, Any]) -> SearchSpace:
    """The space of the config; a trained evaluator adapts input shape and classes to the dataset."""
    name, options = _options(config["space"])
    cls = SPACES.get(name)
    preset = options.pop("preset", None)
    macro = dict(options.pop("macro", None) or {})
    space = cls(preset=preset, **macro)
    if reads_dataset(config["evaluator"]["name"]):
        shape, classes = dataset_signature(config)
        adapted = {}
        if "input_shape" in space.macro and "input_shape" not in macro:
            adapted["input_shape"] = list(shape)
        if "num_classes" in space.macro and "num_classes" not in macro:
            adapted["num_classes"] = classes
        if adapted:
            space = cls(preset=preset, **{**macro, **adapted})
    return space


def dataset_signature(config: dict[str, Any]) -> tuple[tuple[int, int, int], int]:
    """(input shape, classes) of the configured dataset (loaded once, cached for this process)."""
    evaluator = _evaluator_in_process(config)
    data = evaluator.data
    return data.input_shape, data.num_classes


def evaluator_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The picklable description a worker builds the evaluator from."""
    spec = dict(config["evaluator"])
    if reads_dataset(spec["name"]):
        if spec.get("backend") is None:
            spec["backend"] = config["backend"]
        spec.setdefault("dataset", dict(config["dataset"]))
    return spec


def _evaluator_in_process(config: dict[str, Any]) -> Any:
    spec = evaluator_spec(config)
    key = repr(sorted(spec.items()))
    if key not in executors._EVALUATOR_CACHE:
        options = dict(spec)
        name = options.pop("name")
        if reads_dataset(name):
            DATASETS.get(options["dataset"]["name"])  # unknown dataset: fail before anything runs
        from nas.evaluators.base import make_evaluator

        try:
            executors._EVALUATOR_CACHE[key] = make_evaluator(name, **options)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad option for evaluator {name!r}: {exc}") from None
    return executors._EVALUATOR_CACHE[key]


CONSTRAINTS = {"params_max": "params", "macs_max": "macs"}


def objectives_of(config: dict[str, Any]):
    """``objectives=[a:max,b:min]`` when given (several), else ``objective``."""
    return parse_objectives(str(config["objective"]), config.get("objectives"))


def constraint_check(config: dict[str, Any], space: SearchSpace):
    """A function rejecting genotypes over ``constraints.params_max`` / ``macs_max`` (None: no constraint)."""
    limits = {CONSTRAINTS[k]: v for k, v in (config.get("constraints") or {}).items() if v is not None}
    macs_budget = (config.get("budget") or {}).get("macs")
    if macs_budget is not None:
        limits["macs"] = min(limits.get("macs", macs_budget), macs_budget)
    if not limits:
        return None
    from nas.core.cost import arch_cost

    def admit(genotype) -> str | None:
        cost = arch_cost(space.decode(genotype))
        over = [f"{metric} {cost[metric]:,} > {limit:,.0f}" for metric, limit in limits.items()
                if cost[metric] > limit]
        return "constraint: " + ", ".join(over) if over else None

    return admit


def check_option_types(group: str, cls: type, options: dict[str, Any]) -> None:
    """Options whose constructor default is a bool, an int or a float must be one (``searcher.population_size=abc``
    is named here, not by the comparison deep inside the constructor that would trip on it)."""
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in options.items():
        default = parameters[key].default if key in parameters and value is not None else None
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:
            continue
        if not ok:
            raise UserError(f"{group}.{key} must be {kind}, got {value!r}")


def build_searcher(config: dict[str, Any], space: SearchSpace) -> Searcher:
    name, options = _options(config["searcher"])
    for key in WARM_KEYS:  # the runner's, not the searcher's (see ``start_searcher``)
        options.pop(key, None)
    cls = SEARCHERS.get(name)
    macs_budget = (config.get("budget") or {}).get("macs")
    if macs_budget is not None and options.get("max_macs") is None \
            and "max_macs" in inspect.signature(cls.__init__).parameters:
        options["max_macs"] = macs_budget  # a searcher that plans within a compute budget gets budget.macs
    check_option_types("searcher", cls, options)
    try:
        searcher = cls(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad option for searcher {name!r}: {exc}") from None
    searcher.setup(space, int(config["seed"]), objectives_of(config))
    return searcher


def proxy_scorer(config: dict[str, Any], space: SearchSpace) -> Any:
    """A ``ProxyScorer`` with the run's seed; data proxies read the run's dataset (loaded on first need)."""
    from nas.data.base import load_dataset
    from nas.evaluators.zero_cost.scorer import ProxyScorer

    def data() -> Any:
        if reads_dataset(config["evaluator"]["name"]):
            return _evaluator_in_process(config).data
        options = dict(config["dataset"])
        return load_dataset(options.pop("name"), **options)

    return ProxyScorer(space, data, int(config["seed"]), backend=str(config["backend"]))


def start_searcher(config: dict[str, Any], space: SearchSpace, run_dir: Path, searcher: Searcher,
                   progress: bool) -> None:
    """Attach the zero-cost proxies a searcher asks for and hand it the warm-start candidates (``warm_start``).

    Called before ``recover``: a resumed run replays its finished trials as asks and tells, so the replayed asks
    take the warm candidates in the order the first run did, and the searcher continues as it would have."""
    wants = getattr(searcher, "proxy_features", ())
    if not wants and config["searcher"].get("warm_start") is None:
        return
    scorer = proxy_scorer(config, space)
    if wants:
        searcher.scorer = scorer
    if config["searcher"].get("warm_start") is not None:
        searcher.warm_start(warm_start(config, space, run_dir, scorer, stderr_log(progress)))


def build_executor(config: dict[str, Any], journal: Journal, searcher: Searcher | None = None) -> executors.Executor:
    """The configured executor; in-process runs pass each epoch's report to ``searcher.should_prune``."""
    name, options = _options(config["runner"])
    spec = evaluator_spec(config)

    def retried(job: Job, attempt: int, reason: str) -> None:
        journal.append("retried", trial=job.trial, attempt=attempt, reason=reason)

    if name == "ray":
        from nas.runner.ray_executor import RayExecutor

        try:
            return RayExecutor(spec, **options, on_retry=retried)
        except TypeError as exc:
            raise UserError(f"bad option for runner 'ray': {exc}") from None
    workers = int(options.get("workers", 1))
    if name != "local":
        raise UserError(f"unknown runner {name!r}; valid choices: local, ray")
    if workers <= 1:
        _evaluator_in_process(config)

        def live(trial: int, epoch: int, metrics: dict[str, float]) -> bool:
            journal.append("reported", trial=trial, epoch=epoch, metrics=metrics)
            return False

        return executors.InProcessExecutor(spec, live, searcher.should_prune if searcher is not None else None)
    return executors.ProcessPoolExecutor(spec, workers, options.get("threads_per_worker"),
                                         options.get("max_retries", 2), retried)


def new_run_dir(config: dict[str, Any]) -> Path:
    if config.get("run_dir"):
        path = Path(config["run_dir"])
        if (path / "trials.jsonl").exists():
            raise UserError(f"run directory {path} already holds a search; continue it with resume={path}")
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(config.get("runs_root") or "runs") / f"{stamp}-{config['space']['name']}-{config['searcher']['name']}"
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def check_config(config: dict[str, Any]) -> None:
    """Reject values of the wrong type before anything runs (one line naming the key)."""
    for key, value, kind in (("budget.trials", config["budget"]["trials"], int), ("seed", config["seed"], int),
                             ("runner.workers", config["runner"].get("workers", 1), int),
                             ("runner.max_retries", config["runner"].get("max_retries", 2), int)):
        if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
            raise UserError(f"{key} must be a non-negative integer, got {value!r}")
    if config["budget"]["trials"] < 1:
        raise UserError("budget.trials must be at least 1")
    macs = config["budget"].get("macs")
    if macs is not None and (not isinstance(macs, (int, float)) or isinstance(macs, bool) or macs <= 0):
        raise UserError(f"budget.macs must be a positive number, got {macs!r}")
    check_objectives(config)
    for key, value in (config.get("constraints") or {}).items():
        if key not in CONSTRAINTS:
            raise UserError(f"unknown constraint {key!r}; valid: {', '.join(CONSTRAINTS)}")
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise UserError(f"constraints.{key} must be a number, got {value!r}")
    if config["backend"] not in ("torch", "jax"):
        raise UserError(f"unknown backend {config['backend']!r}; valid choices: torch, jax")
    check_extras(config)
    run_phases(config)
    device = config["evaluator"].get("device") if reads_dataset(str(config["evaluator"].get("name"))) else None
    if device and config["runner"].get("name", "local") == "local":  # Ray workers may have devices the driver lacks
        check_device(config["backend"], str(device))
    if config["searcher"].get("device"):  # supernet searchers (torch) train in this process
        check_device("torch", str(config["searcher"]["device"]))
    check_warm_start(config["searcher"], getattr(SEARCHERS.get(config["searcher"]["name"]), "supports_warm_start",
                                                 False))
    if config["evaluator"].get("name") == "tabular" and config["space"].get("name") != "nb201":
        raise UserError(f"evaluator=tabular looks NB201 cells up; it cannot evaluate space={config['space']['name']} "
                        "(use space=nb201, or evaluator=train|proxy|chain|cost)")


def check_extras(config: dict[str, Any]) -> None:
    """A one-line ``MissingExtraError`` when the config picks a feature whose optional extra is not installed
    (``backend=jax``, ``runner=ray``, ``searcher=ray_tune``), before anything runs or is written."""
    if config["backend"] == "jax":
        extras.check("jax", "backend=jax")
    if config["runner"].get("name") == "ray":
        extras.check("ray", "runner=ray")
    if config["searcher"].get("name") == "ray_tune":
        extras.check("ray", "searcher=ray_tune")


OBJECTIVE_TEXT = re.compile(r"[A-Za-z_][\w.]*:\w+")


def check_objectives(config: dict[str, Any]) -> None:
    """Every objective spelled ``<metric>:max`` or ``<metric>:min`` (the mode is not left to a default)."""
    several = config.get("objectives")
    texts = [str(t) for t in several] if several else [str(config["objective"])]
    shown = several if several else config["objective"]
    for text in texts:
        if not OBJECTIVE_TEXT.fullmatch(text.strip()):
            raise UserError(f"bad objective {shown!r}: {text!r} is not <metric>:max or <metric>:min "
                            "(e.g. valid_accuracy:max)")
    try:
        objectives_of(config)
    except ValueError as exc:
        raise UserError(f"bad objective {shown!r}: {exc}") from None


def check_pruning(config: dict[str, Any]) -> None:
    """Refuse an early-stopping setting that would be silently ignored, before anything runs.

    A searcher's ``pruner`` (optuna) decides from the per-epoch reports of a ``train`` evaluation, which reach
    it only when trials run in this process (``runner=local``, ``runner.workers=1``). ``searcher=ray_tune``
    (ASHA) runs its trials on Ray itself, so the process pool's ``runner.workers`` does not apply to it.
    """
    runner = config["runner"]
    pool = runner.get("name") == "local" and int(runner.get("workers") or 1) > 1
    searcher = config["searcher"]
    if searcher.get("name") == "ray_tune" and pool:
        raise UserError("searcher=ray_tune runs its trials on Ray, not in runner.workers processes: drop "
                        "runner.workers (set searcher.max_concurrent, or runner=ray runner.num_cpus=N)")
    pruner = searcher.get("pruner")
    if isinstance(pruner, Mapping):  # searcher.pruner._target_=<short name or optuna.pruners class>
        pruner = pruner.get("_target_")
    reports = getattr(EVALUATORS.get(config["evaluator"]["name"]), "reports_epochs", False)
    if pruner in (None, "none", "NopPruner", "optuna.pruners.NopPruner") or not reports \
            or isinstance(objectives_of(config), MultiObjective):
        return
    if pool or runner.get("name") == "ray":
        where = "runner=ray" if runner.get("name") == "ray" else f"runner.workers={runner['workers']}"
        raise UserError(f"searcher.pruner={pruner} prunes in-process trials only, not with {where}: "
                        "set searcher.pruner=none, or run runner.workers=1")


def prepare(config: dict[str, Any]) -> tuple[dict[str, Any], Path, SearchSpace, Searcher]:
    """Check a new search's config and build its space, evaluator and searcher, writing nothing: the config
    with the searcher's run options, the run directory it would create, the space and the searcher."""
    config = copy.deepcopy(config)
    check_config(config)
    check_pruning(config)
    run_dir = new_run_dir(config)
    config["searcher"] = SEARCHERS.get(config["searcher"]["name"]).run_options(config["searcher"], run_dir)
    space = build_space(config)
    _evaluator_in_process(config)  # the evaluator's options and files (a table, a dataset) are checked here
    searcher = build_searcher(config, space)  # and the searcher's, with the space: all before the directory exists
    build_trackers(config.get("logger"))  # the loggers' options and packages too
    searcher.start_new()
    return config, run_dir, space, searcher


def search(config: dict[str, Any], progress: bool = True) -> RunSummary:
    """Run the search the config describes, writing the run directory."""
    if config.get("resume"):
        config = copy.deepcopy(config)
        check_config(config)
        check_pruning(config)
        return resume(config["resume"], progress=progress, budget=config.get("budget", {}).get("trials"))
    config, run_dir, space, searcher = prepare(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    config["run_dir"] = str(run_dir)
    config["space"]["resolved_macro"] = space.macro
    config["phases"] = run_phases(config)
    (run_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return _run(config, run_dir, space, LoopState(), progress, searcher)


def resume(run_dir: str | os.PathLike, progress: bool = True, budget: int | None = None) -> RunSummary:
    """Continue a killed search to its budget: finished trials are kept, unfinished ones re-run."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if budget is not None:
        config["budget"]["trials"] = budget
    check_config(config)
    build_trackers(config.get("logger"))
    space = run_space(run_dir, config)
    state = read_run_state(run_dir, space)
    return _run(config, run_dir, space, state, progress)


RUN_CONFIG_KEYS = ("space", "searcher", "evaluator", "dataset", "runner", "budget", "seed", "objective", "backend")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The ``config.json`` of a run directory, checked to be a search config (one line when it is not)."""
    config_file = run_dir / CONFIG_FILE
    if not config_file.is_file():
        raise UserError(f"not a run directory (no {CONFIG_FILE}): {run_dir}")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_file} is corrupt (not JSON: {exc}); this run cannot be resumed") from None
    missing = [k for k in RUN_CONFIG_KEYS if not isinstance(config, dict) or k not in config]
    if missing:
        raise UserError(f"{config_file} is not the config of a `nas search` run: it lacks {', '.join(missing)}")
    sections = ("space", "searcher", "evaluator", "dataset", "runner", "budget")
    bad = [k for k in sections if not isinstance(config[k], dict)]
    if bad or not isinstance(config["space"].get("resolved_macro"), dict) or "name" not in config["space"]:
        raise UserError(f"{config_file} is not the config of a `nas search` run: bad "
                        f"{', '.join(bad) or 'space (no name or resolved_macro)'}")
    return config


def run_space(run_dir: Path, config: dict[str, Any]) -> SearchSpace:
    """The space of a run, rebuilt from its ``config.json`` (the preset and the resolved macro settings)."""
    macro = config["space"]["resolved_macro"]
    try:
        return SPACES.get(config["space"]["name"])(preset=config["space"].get("preset"), **macro)
    except (UserError, TypeError, ValueError) as exc:
        raise UserError(f"{run_dir / CONFIG_FILE}: this build cannot rebuild the run's space ({exc})") from None


def read_run_state(run_dir: Path, space: SearchSpace) -> LoopState:
    """The finished and pending trials of a run's journal, every genotype checked against the run's ``space``
    (one line naming the file when the journal is corrupt or holds genotypes of another space or version)."""
    journal = run_dir / "trials.jsonl"
    try:
        events = read_events(journal)
        if journal.exists() and journal.stat().st_size and not events:
            raise ValueError("no line of it is a journal event")
        if any(not isinstance(e, dict) for e in events):
            raise ValueError("a line is not a JSON object")
        results, pending = replay(events)
        jobs = [Job(t, Genotype.from_json(e["genotype"]), int(e["seed"])) for t, e in sorted(pending.items())]
        for trial, genotype in [(r.trial, r.genotype) for r in results] + [(j.trial, j.genotype) for j in jobs]:
            try:
                space.validate(genotype)
            except UserError as exc:
                raise ValueError(f"trial {trial}: {exc}") from None
    except (UserError, KeyError, TypeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        detail = f"an event lacks {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(f"cannot resume {journal}: {detail}") from None
    used = [r.trial for r in results] + [j.trial for j in jobs]
    return LoopState(results=results, pending=jobs, next_trial=max(used, default=-1) + 1,
                     told=told_sequence(events))


def begin_evaluator(config: dict[str, Any], searcher: Searcher, state: LoopState) -> None:
    """Hand an evaluator that keeps state across trials (``begin(history)``, e.g. ``chain``) the run's finished
    trials before the first new one, when the trials run in this process: a fresh search starts it empty (not
    with an earlier search's state from this process's evaluator cache), a resumed one rebuilds it. Worker
    processes (``runner.workers>1``, Ray) build their own evaluators, empty."""
    name, options = _options(config["runner"])
    if not hasattr(EVALUATORS.get(config["evaluator"]["name"]), "begin"):
        return
    if not isinstance(searcher, DrivingSearcher) and (name != "local" or int(options.get("workers", 1)) > 1):
        return
    _evaluator_in_process(config).begin(sorted(state.results, key=lambda r: r.finished))


def _run(config: dict[str, Any], run_dir: Path, space: SearchSpace, state: LoopState,
         progress: bool, searcher: Searcher | None = None) -> RunSummary:
    objective = objectives_of(config)
    resumed = searcher is None  # a resume builds its searcher here and always lets it recover (maybe from nothing)
    if searcher is None:
        searcher = build_searcher(config, space)
    start_searcher(config, space, run_dir, searcher, progress)
    already = len(state.results)
    if already or resumed:
        searcher.recover(state.told)
        if state.pending and not isinstance(searcher, DrivingSearcher):
            searcher.recover_in_flight([job.genotype for job in state.pending])
    begin_evaluator(config, searcher, state)
    budget = int(config["budget"]["trials"])
    start = time.time()
    sections: list[tuple[str, str]] = []  # report sections a self-driven searcher adds
    run = RunInfo(run_dir, config, {o.metric: o.mode for o in getattr(objective, "objectives", (objective,))})
    with tracking(config.get("logger"), run) as feed:
        with Journal(run_dir / "trials.jsonl") as journal:
            if feed is not None:
                feed.attach(read_events(journal.path), journal.subscribe)
            driving = isinstance(searcher, DrivingSearcher)
            shown_budget = budget if not driving or searcher.counts_budget else None
            progress_line = Progress(shown_budget, objective, already=already, enabled=progress)
            page = LiveReport(run_dir)
            page.start()

            def show(result: Result, results: list[Result]) -> None:
                progress_line(result, results)
                page(result, results)

            if driving:
                results = _drive(config, run_dir, searcher, journal, state, budget, show, progress, sections)
            else:
                executor = build_executor(config, journal, searcher)
                try:
                    results = run_loop(space, searcher, executor, journal, budget, int(config["seed"]), objective,
                                       state, dedup=bool(config.get("dedup", False)), on_result=show,
                                       admit=constraint_check(config, space))
                finally:
                    executor.shutdown()
        best = chosen_best(results, objective)
        write_best(run_dir, best, space)
        write_report(run_dir, results, objective, space, config, time.time() - start, sections)
        if isinstance(objective, MultiObjective):
            from nas.runner.pareto import write_pareto

            write_pareto(run_dir, results, objective, space)
        write_progress_plot(run_dir, results, objective)
        if any("macs" in r.metrics for r in results):
            write_cost_accuracy_plot(run_dir, results, objective)
        page.finish()
        if feed is not None:
            feed.finish(run_dir)
    return RunSummary(run_dir, results, best, space)


def _drive(config: dict[str, Any], run_dir: Path, searcher: DrivingSearcher, journal: Journal, state: LoopState,
           budget: int, show: Callable[[Result, list[Result]], None], progress: bool,
           sections: list[tuple[str, str]]) -> list[Result]:
    """Hand the run to a self-driven searcher; every trial it evaluates or records is journalled."""
    results = state.results
    spec = evaluator_spec(config)
    seed = int(config["seed"])
    counter = {"next": state.next_trial}

    def take_id() -> int:
        trial = counter["next"]
        counter["next"] += 1
        return trial

    def finish(result: Result) -> Result:
        journal.finished(result)
        results.append(result)
        show(result, results)
        return result

    def report(trial: int, epoch: int, metrics: Any) -> None:
        journal.append("reported", trial=trial, epoch=epoch, metrics=dict(metrics))

    def evaluate(genotype: Genotype, tags: dict[str, str] | None = None) -> Result:
        job = Job(take_id(), genotype, trial_seed(seed, counter["next"] - 1))
        journal.append("started", trial=job.trial, genotype=genotype.to_json(),
                       fingerprint=genotype.fingerprint(), seed=job.seed)
        _evaluator_in_process(config)
        outcome = evaluate_job(spec, job, lambda trial, epoch, metrics: report(trial, epoch, metrics) or False)
        result = Result(trial=job.trial, genotype=genotype, state=outcome.state, metrics=outcome.metrics,
                        seconds=outcome.finished - outcome.started, epochs=outcome.epochs, seed=job.seed,
                        worker=outcome.worker, started=outcome.started, finished=outcome.finished,
                        error=outcome.error, tags=dict(tags or {}))
        return finish(result)

    def record(result: Result) -> Result:
        return finish(dataclasses.replace(result, trial=take_id()))

    def log(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    def add_report_section(title: str, markdown: str) -> None:
        sections.append((title, markdown))

    searcher.drive(Drive(run_dir=run_dir, config=config, budget=budget, results=results, evaluator_spec=spec,
                         evaluate=evaluate, record=record, report=report, log=log,
                         add_report_section=add_report_section))
    state.next_trial = counter["next"]
    return results
