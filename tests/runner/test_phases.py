"""``backend=jax`` means JAX in every phase of a search that runs networks, or the run is refused in one line naming
the phase; ``config.json`` and ``report.md`` say which backend each phase used."""

from __future__ import annotations

import json

import pytest

from nas.cli.config import compose, group_options
from nas.cli.main import main
from nas.core.errors import UserError
from nas.runner.phases import NO_NETWORK, run_phases
from nas.runner.run import build_space, proxy_scorer
from nas.testing.skips import require_extra

TORCH_ONLY = {"bossnas": "block-wise supernet training and rating", "fbnetv5": "multitask supernet training"}


@pytest.mark.parametrize("name", group_options("searcher"))  # every built-in searcher (one config file each)
def test_every_searcher_runs_every_phase_on_jax_or_refuses_naming_the_phase(name: str) -> None:
    config = compose([f"searcher={name}", "evaluator=train", "backend=jax"])
    if name in TORCH_ONLY:
        with pytest.raises(UserError) as caught:
            run_phases(config)
        message = str(caught.value)
        assert "\n" not in message and TORCH_ONLY[name] in message and f"searcher {name}" in message
        assert message.startswith("backend=jax:") and message.endswith("use backend=torch")
        torch = run_phases({**config, "backend": "torch"})
        assert set(torch.values()) == {"torch"}
        # FBNetV5 trains and records its trials itself: the evaluator runs nothing there
        assert ("evaluator train: trials" in torch) == (name != "fbnetv5")
    else:
        phases = run_phases(config)
        assert phases and set(phases.values()) == {"jax"}, phases
        assert phases["evaluator train: trials"] == "jax"


def test_the_evaluator_phase_follows_its_own_backend_option_and_analytic_evaluators_run_no_network() -> None:
    own = compose(["evaluator=proxy", "evaluator.backend=torch", "backend=jax"])
    assert run_phases(own) == {"evaluator proxy: trials": "torch"}
    assert run_phases(compose(["evaluator=cost", "backend=jax"])) == {"evaluator cost: trials": NO_NETWORK}


def test_warm_start_proxies_run_on_the_chosen_backend_or_refuse_the_run(monkeypatch) -> None:
    with pytest.raises(UserError, match="^backend=jax: searcher evolution's zero-cost proxy 'snip' has no jax "
                                        "implementation; jax computes: macs, naswot, params, synflow$"):
        run_phases(compose(["searcher.warm_start=zc_snip", "evaluator=cost", "backend=jax"]))
    config = compose(["searcher=predictor_evolution", "searcher.proxy_features=[zc_synflow]",
                      "searcher.warm_start=zc_naswot", "evaluator=cost", "backend=jax"])
    phases = run_phases(config)
    assert phases["searcher predictor_evolution: zero-cost proxies (naswot, synflow)"] == "jax"
    scorer = proxy_scorer(config, build_space(config))
    seen = []
    from nas.evaluators.zero_cost import scores

    def record(genotype, proxies, data, batch_size, seed, backend="torch"):
        seen.append(backend)
        return {f"zc_{p}": 1.0 for p in proxies}

    monkeypatch.setattr(scores, "proxy_scores", record)
    space = build_space(config)
    assert scorer(space.sample(0), ["synflow"]) == {"synflow": 1.0} and seen == ["jax"]


def test_the_cli_refuses_a_torch_only_phase_in_one_line_before_writing(tmp_path, capsys) -> None:
    out = tmp_path / "runs"
    assert main(["search", "space=hytra", "backend=jax", f"run_dir={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: backend=jax: searcher bossnas runs its block-wise supernet training and rating in torch "
                   "only (no jax implementation yet); use backend=torch")
    assert not out.exists()


def test_config_json_and_report_state_each_phases_backend(tmp_path) -> None:
    require_extra("jax", "jax")
    out = tmp_path / "run"
    assert main(["search", "space=nb201", "evaluator=proxy", "evaluator.proxies=[synflow]", "backend=jax",
                 "budget.trials=1", f"run_dir={out}"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["phases"] == {"evaluator proxy: trials": "jax"}
    assert "- backends: evaluator proxy: trials: jax" in (out / "report.md").read_text()
