import json

import pytest

from tutor.errors import InvalidInput
from tutor.model.registry import Registry


def _version(root, name, base="tiny"):
    (root / name).mkdir(parents=True)
    (root / name / "adapter_config.json").write_text("{}")
    (root / name / "manifest.json").write_text(json.dumps({"base": base, "version": name}))


def test_champion_falls_back_to_the_base_model_until_one_is_registered(tmp_path, store):
    registry = Registry(tmp_path, store)
    said = []
    assert registry.resolve("base") is None
    assert registry.resolve("champion", said.append) is None and "base model" in said[0]
    with pytest.raises(InvalidInput):
        registry.resolve("candidate")
    with pytest.raises(InvalidInput):
        registry.resolve("v9")


def test_shipped_aliases_serve_a_fresh_clone_and_the_stores_aliases_win(tmp_path, store):
    _version(tmp_path, "v1")
    _version(tmp_path, "v2")
    (tmp_path / "aliases.json").write_text('{"champion": "v1"}')
    registry = Registry(tmp_path, store)
    assert registry.resolve("champion") == tmp_path / "v1"
    assert Registry(tmp_path).resolve("champion") == tmp_path / "v1"  # no database yet
    registry.set_alias("champion", "v2")
    assert registry.resolve("champion") == tmp_path / "v2"
    assert [(v.version, v.aliases) for v in store.model_versions()] == [("v1", ()), ("v2", ("champion",))]
    # the shipped champion is recorded first, so a rollback can return to it
    assert [(c["version"], c["previous"], c["reason"]) for c in store.alias_changes("champion")] == [
        ("v2", "v1", "promote"), ("v1", None, "shipped")]
    assert registry.next_version() == "v3"
    (tmp_path / "v3").mkdir()  # a round under way (no manifest yet) holds its number
    assert registry.next_version() == "v4"


def test_aliases_point_only_at_registered_versions(tmp_path, store):
    registry = Registry(tmp_path, store)
    with pytest.raises(InvalidInput):
        registry.set_alias("champion", "v1")
    _version(tmp_path, "v1")
    with pytest.raises(InvalidInput):
        registry.set_alias("favourite", "v1")


def test_evaluation_figures_are_kept_in_the_manifest_and_the_store(tmp_path, store):
    _version(tmp_path, "v1")
    registry = Registry(tmp_path, store)
    registry.sync()
    registry.record_evaluation("v1", {"figures": {"move_f1": 0.4}, "split": "validation"})
    assert registry.manifest("v1")["evaluation"]["figures"]["move_f1"] == 0.4
    assert store.model_versions()[0].manifest["evaluation"]["split"] == "validation"
