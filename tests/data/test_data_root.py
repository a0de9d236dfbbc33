from pathlib import Path

import pytest

from deepcollapse.data import DEFAULT_ROOT, ENV_VAR, data_root, dataset_dir


def test_explicit_root_beats_env(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_env_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"


def test_default_when_env_unset_or_empty(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    expected = Path.home() / ".cache" / "deepcollapse" / "data"
    assert data_root() == expected
    monkeypatch.setenv(ENV_VAR, "  ")
    assert data_root() == expected
    assert DEFAULT_ROOT.expanduser() == expected


def test_tilde_expanded(monkeypatch):
    assert data_root("~/x") == Path.home() / "x"


def test_dataset_dir_subfolders(tmp_path):
    assert dataset_dir("mnist", tmp_path) == tmp_path / "mnist"
    assert dataset_dir("fashion-mnist", tmp_path) == tmp_path / "fashion-mnist"
    assert dataset_dir("cifar10-jpeg", tmp_path) == tmp_path / "cifar10-jpeg"
    assert dataset_dir("cifar10-python", tmp_path) == tmp_path / "cifar-10-batches-py"
    with pytest.raises(ValueError, match="source must be one of"):
        dataset_dir("imagenet", tmp_path)
    with pytest.raises(ValueError, match="root"):
        data_root("")
