"""A space's ``suggest:`` block picks its searcher and data unless the user set those keys."""

import shutil

from nas.cli import config as config_module


def test_space_suggestions_yield_to_user_overrides(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(config_module.CONF_DIR, conf)
    with (conf / "space" / "nb201.yaml").open("a") as handle:
        handle.write("suggest:\n  searcher: random\n  dataset.resolution: 16\n")
    monkeypatch.setattr(config_module, "CONF_DIR", conf)
    plain = config_module.compose([])
    assert plain["searcher"]["name"] == "random" and plain["dataset"]["resolution"] == 16
    mine = config_module.compose(["searcher=optuna", "dataset.resolution=32"])
    assert mine["searcher"]["name"] == "optuna" and mine["dataset"]["resolution"] == 32


def test_every_image_dataset_takes_a_space_s_resolution():
    """``space=hytra`` suggests 64 px inputs: every image dataset declares ``resolution`` so that the suggestion
    composes with it (``dataset=cifar10`` once refused it as an unknown key)."""
    for path in sorted((config_module.CONF_DIR / "dataset").glob("*.yaml")):
        name = path.stem
        root = ["dataset.root=/nowhere"] if "root:" in path.read_text() else []
        cfg = config_module.compose(["space=hytra", f"dataset={name}", *root])
        assert cfg["dataset"]["resolution"] == 64, name
