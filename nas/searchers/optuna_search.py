"""Optuna samplers as a searcher: TPE by default, any class of ``optuna.samplers`` / ``optuna.pruners`` by
``_target_`` (``resolve_class``: attribute lookup under those modules only), through Optuna's ask/tell
interface, the study in memory or in a storage (``open_storage``: a database URL or a journal file).

The space spec maps onto Optuna distributions decision by decision: a choice is categorical (by value
when the options are plain scalars, else by index), an integer range ``suggest_int``, a float range
``suggest_float`` (log when the decision is). Conditional decisions are asked only when active, which
Optuna's define-by-run trials allow. Results the searcher did not ask for (a resumed run's history, a
duplicate answered from the runner's cache) are added as finished trials so the sampler learns them; a stored
study already holds a resumed run's trials (each carries the journal's trial id as the user attribute
``nas_trial``), so only those it lacks are added.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.core.decisions import Choice, FloatRange, IntRange, SpaceSpec
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.searchers import targets
from nas.searchers.base import SEARCHERS, MultiObjective, Objective, Searcher, told_pairs
from nas.searchers.targets import public_classes, split_target

SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "nsgaii": "NSGAIISampler", "cmaes": "CmaEsSampler",
            "gp": "GPSampler", "qmc": "QMCSampler"}  # short names (besides auto) of optuna.samplers classes
PRUNERS = {"median": "MedianPruner", "halving": "SuccessiveHalvingPruner", "none": "NopPruner"}
ROOTS = ("optuna.samplers", "optuna.pruners")  # the only modules a ``_target_`` may name a class of
NAS_TRIAL = "nas_trial"  # user attribute of each Optuna trial: the run's trial id (links a stored study to the journal)


def _target(value: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """(name, keyword arguments) of ``searcher.sampler`` / ``searcher.pruner`` (``targets.split_target``)."""
    return split_target(value, kind, ROOTS[kind == "pruner"])


def resolve_class(name: str, roots: tuple[str, ...] = ROOTS) -> type:
    """The class a dotted ``name`` names under one of ``roots`` (``optuna.samplers.CmaEsSampler``), found by
    attribute lookup from those already imported modules: nothing else is imported, nothing private is reached."""
    return targets.resolve_class(name, roots)


def _component(value: Any, kind: str, aliases: dict[str, str]) -> tuple[type, dict[str, Any]]:
    """(class, keyword arguments) of a sampler or pruner setting, its keyword arguments checked against the
    class's signature (nested ``_target_`` mappings too, e.g. a ``PatientPruner``'s ``wrapped_pruner``)."""
    import optuna

    base = optuna.samplers.BaseSampler if kind == "sampler" else optuna.pruners.BasePruner
    root = ROOTS[kind == "pruner"]
    name, kwargs = _target(value, kind)
    short = (["auto"] if kind == "sampler" else []) + list(aliases)
    valid = (f"valid choices: {', '.join(short)}, or searcher.{kind}._target_={root}.<Class> "
             f"({', '.join(public_classes(root, base))})")
    if name in aliases:
        name = f"{root}.{aliases[name]}"
    elif "." not in name:
        raise ValueError(f"unknown optuna {kind} {name!r}; {valid}")
    try:
        cls = resolve_class(name, (root,))
    except ValueError as exc:
        raise ValueError(f"{exc}; {valid}") from None
    if not issubclass(cls, base):
        raise ValueError(f"{name!r} is not an optuna {kind}; {valid}")
    _check_arguments(cls, kwargs, f"searcher.{kind}")
    return cls, kwargs


def _check_arguments(cls: type, kwargs: dict[str, Any], where: str) -> None:
    targets.check_arguments(cls, kwargs, where, ROOTS)


def _build(cls: type, kwargs: dict[str, Any], seed: int) -> Any:
    """An instance of ``cls``: nested ``_target_`` mappings built first, the run's seed given to every class
    that takes a ``seed`` and was given none."""
    return targets.build(cls, kwargs, ROOTS, {"seed": seed})


def absolute_storage(spec: str) -> str:
    """``spec`` with a relative journal path or ``sqlite:///`` file made absolute; other URLs as given."""
    if spec.startswith("sqlite:///") and not spec.startswith("sqlite:////") and spec != "sqlite:///:memory:":
        return "sqlite:///" + str(Path(spec[len("sqlite:///"):]).expanduser().absolute())
    if "://" in spec:
        return spec
    return str(Path(spec).expanduser().absolute())


def open_storage(spec: str) -> Any:
    """An Optuna storage: a database URL (``sqlite:///study.db``) as ``RDBStorage``, any other text a journal
    file (``JournalStorage`` over a ``JournalFileBackend``) in an existing folder. One-line ``UserError``
    when it cannot be opened."""
    import optuna

    try:
        if "://" in spec:
            return optuna.storages.RDBStorage(spec)
        path = Path(spec).expanduser()
        if not path.parent.is_dir():
            raise FileNotFoundError(f"no folder {path.parent}")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    except Exception as exc:  # noqa: BLE001 - database drivers raise their own kinds; all mean "cannot open"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"searcher.storage={spec!r} cannot be opened: {text}") from None


def _plain(options: tuple) -> bool:
    return all(o is None or isinstance(o, (bool, int, float, str)) for o in options)


def spec_distributions(spec: SpaceSpec) -> dict[str, Any]:
    """The Optuna distribution of every decision: a choice is categorical by value (plain scalars) or
    by index, an integer range an ``IntDistribution``, a float range a ``FloatDistribution``."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for decision in spec:
        if isinstance(decision, Choice):
            choices = decision.options if _plain(decision.options) else tuple(range(decision.size))
            out[decision.label] = d.CategoricalDistribution(choices)
        elif isinstance(decision, IntRange):
            out[decision.label] = d.IntDistribution(decision.low, decision.high, step=decision.step)
        elif isinstance(decision, FloatRange):
            out[decision.label] = d.FloatDistribution(decision.low, decision.high, log=decision.log)
    return out


def suggest(trial: Any, spec: SpaceSpec) -> dict[str, Any]:
    """Decision values drawn through an Optuna trial's ``suggest_*`` calls (define-by-run), asking a
    conditional decision only when it is active. Shared by this searcher and Ray Tune's OptunaSearch."""
    values: dict[str, Any] = {}
    for decision in spec:
        if not spec.is_active(decision, values):
            continue
        if isinstance(decision, Choice):
            if _plain(decision.options):
                values[decision.label] = trial.suggest_categorical(decision.label, list(decision.options))
            else:
                index = trial.suggest_categorical(decision.label, list(range(decision.size)))
                values[decision.label] = decision.options[index]
        elif isinstance(decision, IntRange):
            values[decision.label] = trial.suggest_int(decision.label, decision.low, decision.high,
                                                       step=decision.step)
        else:
            values[decision.label] = trial.suggest_float(decision.label, decision.low, decision.high,
                                                         log=decision.log)
    return values


def trial_params(spec: SpaceSpec, genotype: Genotype) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, distributions) of a genotype's active decisions, as Optuna's ``create_trial`` takes them."""
    dists = spec_distributions(spec)
    params, active = {}, {}
    for label, value in genotype.decisions:
        if label not in dists:
            continue
        decision = spec[label]
        params[label] = value if not isinstance(decision, Choice) or _plain(decision.options) \
            else decision.options.index(value)
        active[label] = dists[label]
    return params, active


@SEARCHERS.register("optuna")
class OptunaSearcher(Searcher):
    """Any Optuna sampler and pruner through ask/tell.

    ``sampler``: a short name (auto: TPE for one objective, NSGA-II for several; tpe, random, nsgaii, cmaes, gp,
    qmc), or a mapping ``{_target_: optuna.samplers.<Class>, <keyword>: <value>, ...}`` naming any sampler class
    of ``optuna.samplers`` with its keyword arguments (the run's seed is passed when it takes one and none is
    given). ``startup_trials`` random trials come first for the short names tpe, cmaes and gp, and
    ``multivariate`` is TPE's; a ``_target_`` gets only its own keywords. ``pruner`` likewise: median, halving,
    none, or ``{_target_: optuna.pruners.<Class>, ...}``; it stops trials whose per-epoch objective falls
    behind, from the reports of in-process runs (one objective only; Optuna cannot prune multi-objective
    studies). A warm start enqueues its candidates (``study.enqueue_trial``), so they are the first trials asked.

    ``storage``: where the study is kept (``sqlite:///study.db`` or another database URL, or a journal file
    path), under ``study_name`` (the runner gives the run directory's name), so optuna-dashboard can open it and
    a resumed run continues the same study: trials already stored are not added again.
    """

    supports_warm_start = True
    multi_objective = True

    def __init__(self, sampler: str | Mapping[str, Any] = "auto", startup_trials: int = 10,
                 multivariate: bool = False, pruner: str | Mapping[str, Any] = "median",
                 pruner_startup_trials: int = 5, storage: str | None = None, study_name: str | None = None) -> None:
        self.sampler_spec = sampler
        if _target(sampler, "sampler")[0] != "auto":
            _component(sampler, "sampler", SAMPLERS)
        self.pruner_class, self.pruner_kwargs = _component(pruner, "pruner", PRUNERS)
        if _target(pruner, "pruner")[0] == "median":
            self.pruner_kwargs = {"n_startup_trials": pruner_startup_trials, "n_warmup_steps": 0, **self.pruner_kwargs}
        if storage is not None and (not isinstance(storage, str) or not storage.strip()):
            raise ValueError(f"searcher.storage must be a database URL or a journal file path, got {storage!r}")
        self.startup_trials = startup_trials
        self.multivariate = multivariate
        self.storage = storage
        self.study_name = study_name

    def setup(self, space, seed: int = 0, objective: Objective | None = None) -> None:
        import optuna

        super().setup(space, seed, objective)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objectives = (self.objective.objectives if isinstance(self.objective, MultiObjective)
                           else (self.objective,))
        directions = ["maximize" if o.mode == "max" else "minimize" for o in self.objectives]
        storage = open_storage(self.storage) if self.storage is not None else None
        name = self.study_name or "nas"
        stored = self._stored_trials(storage, name)
        try:  # a stored study's sampler is seeded past the trials it holds, so a resume does not repeat their draws
            sampler = self._sampler(seed + (stored or 0))
            pruner = _build(self.pruner_class, self.pruner_kwargs, seed)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad option for searcher 'optuna': {exc}") from None
        if storage is not None and stored is not None:
            loaded = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
            if [d.name.lower() for d in loaded.directions] != directions:
                raise UserError(f"study {name!r} in {self.storage} has directions "
                                f"{[d.name.lower() for d in loaded.directions]}, this run {directions}")
            self.study = loaded
        else:
            self.study = optuna.create_study(directions=directions, sampler=sampler, pruner=pruner,
                                             storage=storage, study_name=self.study_name)
        self.pending: dict[str, deque] = defaultdict(deque)

    @staticmethod
    def _stored_trials(storage: Any, name: str) -> int | None:
        """How many trials the stored study ``name`` holds; None when there is no such study."""
        if storage is None:
            return None
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            return None
        return len(storage.get_all_trials(study_id, deepcopy=False))

    def _sampler(self, seed: int) -> Any:
        """The configured sampler; a short name gets this searcher's start-up settings."""
        name, kwargs = _target(self.sampler_spec, "sampler")
        if name == "auto":
            name = "nsgaii" if len(self.objectives) > 1 else "tpe"
        cls, kwargs = _component({"_target_": name, **kwargs}, "sampler", SAMPLERS)
        if name in ("tpe", "cmaes", "gp"):
            kwargs = {"n_startup_trials": self.startup_trials, **kwargs}
        if name == "tpe":
            kwargs = {"multivariate": self.multivariate, **kwargs}
        return _build(cls, kwargs, seed)

    @classmethod
    def run_options(cls, options: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        """The study is named after the run directory unless named; a storage path or sqlite file is made
        absolute (a resume may start in another working directory)."""
        options = dict(options)
        if not options.get("study_name"):
            options["study_name"] = run_dir.name
        storage = options.get("storage")
        if isinstance(storage, str) and storage.strip():
            options["storage"] = absolute_storage(storage)
        return options

    def start_new(self) -> None:
        """A new run's study must be empty: a stored study of that name with trials belongs to another run."""
        if self.storage is not None and self.study.trials:
            raise UserError(f"study {self.study.study_name!r} in {self.storage} already holds "
                            f"{len(self.study.trials)} trials; continue its run with resume=<run_dir>, or set "
                            "searcher.study_name=<new name>")

    def should_prune(self, genotype: Genotype, epoch: int, metrics) -> bool:
        """Report the epoch's objective to the running Optuna trial and ask its pruner."""
        import optuna

        queue = self.pending.get(genotype.fingerprint())
        value = metrics.get(self.objectives[0].metric)
        if not queue or len(self.objectives) > 1 or value is None \
                or isinstance(self.study.pruner, optuna.pruners.NopPruner):
            return False
        trial = queue[0]
        trial.report(float(value), step=int(epoch))
        return bool(trial.should_prune())

    def distributions(self) -> dict[str, Any]:
        """The Optuna distribution of every decision (for ``add_trial``)."""
        return spec_distributions(self.space.spec())

    def warm_start(self, genotypes) -> None:
        """Enqueue ``genotypes`` in order: Optuna's next asks fix their parameters to these values (a stored
        study that already holds them, a resumed run's, does not get them twice)."""
        for genotype in genotypes:
            self.study.enqueue_trial(trial_params(self.space.spec(), genotype)[0],
                                     skip_if_exists=self.storage is not None)

    def ask(self) -> Genotype | None:
        trial = self.study.ask()
        values = suggest(trial, self.space.spec())
        genotype = self.space.make(values)
        self.pending[genotype.fingerprint()].append(trial)
        return genotype

    def tell(self, genotype: Genotype, result: Result) -> None:
        import optuna

        super().tell(genotype, result)
        queue = self.pending.get(genotype.fingerprint())
        found = [result.metrics.get(o.metric) for o in self.objectives]
        value = None if any(v is None for v in found) else [float(v) for v in found]
        if queue:
            trial = queue.popleft()
            trial.set_user_attr(NAS_TRIAL, result.trial)
            if result.state is TrialState.COMPLETE and value is not None:
                self.study.tell(trial, value)
            elif result.state is TrialState.PRUNED:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        if result.state is TrialState.COMPLETE and value is not None:
            params, distributions = trial_params(self.space.spec(), genotype)
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                           values=value, user_attrs={NAS_TRIAL: result.trial}))

    def recover(self, history) -> None:
        """Without a storage, replay the history into the fresh in-memory study (base class). With one, the
        study already holds the finished trials: trials it lacks (finished after the process last told it)
        are added, trials left running by the killed process are marked failed, and nothing is doubled."""
        import optuna

        if self.storage is None:
            super().recover(history)
        else:
            history = told_pairs(history)
            self.told = len(history)
            for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            stored = {t.user_attrs.get(NAS_TRIAL) for t in self.study.get_trials(deepcopy=False)
                      if t.state.is_finished()}
            for genotype, result in history:
                if result.trial not in stored:
                    self.tell(genotype, result)
                    self.told -= 1
        for queue in self.pending.values():  # replayed asks whose trial finished with another genotype
            while queue:
                self.study.tell(queue.popleft(), state=optuna.trial.TrialState.FAIL)

    def recover_in_flight(self, genotypes) -> None:
        """Without a storage, replay the asks of the cut-off trials (base class); an ask that proposes another
        genotype than its trial's has its Optuna trial failed (the re-run trial is added when told), so none is left
        running. A stored study's sampler does not replay the first run's draws: nothing to align, nothing asked."""
        import optuna

        if self.storage is not None:
            return
        wanted = Counter(g.fingerprint() for g in genotypes)
        for _ in genotypes:
            key = self.ask().fingerprint()
            if wanted[key]:
                wanted[key] -= 1
            else:
                self.study.tell(self.pending[key].pop(), state=optuna.trial.TrialState.FAIL)
