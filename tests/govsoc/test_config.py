from __future__ import annotations

import pytest

from govsoc.config import load_config
from govsoc.errors import ConfigError


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.store_engine == "sqlite"
    assert config.sqlite_path == config.data_dir / "govsoc.db"
    assert config.source is None


def test_file_env_and_cli_precedence(tmp_path):
    path = tmp_path / "govsoc.yml"
    path.write_text("data_dir: /srv/govsoc\nstore:\n  engine: opensearch\n"
                    "console:\n  port: 9000\n")
    config = load_config(path, env={"GOVSOC_CONSOLE_PORT": "9100",
                                    "GOVSOC_STORE_URL": "https://es:9200"})
    assert config.store_engine == "opensearch"
    assert config.get("console.port") == 9100
    assert config.get("store.url") == "https://es:9200"
    assert str(config.data_dir) == "/srv/govsoc"
    override = load_config(path, data_dir=tmp_path / "d", env={})
    assert override.data_dir == tmp_path / "d"


@pytest.mark.parametrize(("text", "key", "words"), [
    ("store:\n  engien: sqlite\n", "store.engien", "did you mean 'engine'"),
    ("store:\n  engine: mongodb\n", "store", "not one of"),
    ("console:\n  port: eighty\n", "console.port", "not of type"),
    ("console:\n  port: 70000\n", "console.port", "70000"),
    ("bogus: 1\n", "bogus", "unknown key"),
    ("- a list\n", "(top level)", "mapping"),
    ("store: [unclosed\n", "(yaml)", "line"),
])
def test_bad_config_names_key(tmp_path, text, key, words):
    path = tmp_path / "govsoc.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message and words in message
    assert message.split(": ")[1].startswith(key) or key in message


def test_bad_environment_value_is_named():
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"GOVSOC_STORE_ENGINE": "mysql"})
    assert "GOVSOC_STORE_ENGINE" in str(info.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml", env={})


@pytest.mark.parametrize("name", ["single-server.yml", "central-cluster.yml", "sensor.yml"])
def test_example_configurations_are_valid(name):
    from pathlib import Path

    from govsoc.service import import_input_sections

    import_input_sections()
    path = Path(__file__).resolve().parents[2] / "deploy" / "examples" / name
    config = load_config(path, env={})
    assert config.get("inputs")
