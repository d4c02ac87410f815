import pytest

from custval import config
from custval.data.loaders import load_transactions
from custval.errors import ConfigError, DataError


def test_tracking_uri_defaults_to_local_sqlite(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert config.tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/x/other.db")
    assert config.tracking_uri() == "sqlite:////tmp/x/other.db"
    assert str(config.artifact_root()) == "/tmp/x/mlartifacts"


def test_yaml_expands_environment_and_rejects_non_mappings(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTVAL_TEST_SOURCE", "data/tx.csv")
    good = tmp_path / "good.yaml"
    good.write_text("data:\n  source: ${CUSTVAL_TEST_SOURCE}\n")
    assert config.load_yaml(good) == {"data": {"source": "data/tx.csv"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.load_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        config.load_yaml(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_yaml(broken)


def test_overrides_parse_yaml_scalars_and_set_nested_keys():
    target = {"value": {"horizon": "12M"}, "period": "W"}
    for key, value in config.parse_overrides(["value.horizon=24M", "penalizer=0.5", "data.source=x.csv"]):
        config.set_dotted(target, key, value)
    assert target == {"value": {"horizon": "24M"}, "period": "W", "penalizer": 0.5, "data": {"source": "x.csv"}}
    with pytest.raises(ConfigError, match="key=value"):
        config.parse_overrides(["novalue"])
    with pytest.raises(ConfigError, match="not a section"):
        config.set_dotted(target, "period.x", 1)


def test_data_duplicates_defaults_to_the_sources_own_policy(tmp_path):
    data = config.DataConfig()
    assert data.duplicates is None
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,timestamp,amount\n1,1997-01-01,10.0\n1,1997-01-01,10.0\n")
    with pytest.raises(DataError, match="duplicate"):  # a file: "error"
        load_transactions(str(csv), duplicates=data.duplicates)
    cdnow = load_transactions("cdnow-sample", duplicates=data.duplicates)  # CDNOW: "keep"
    assert len(cdnow) == len(load_transactions("cdnow-sample", duplicates="keep"))
    assert cdnow.duplicated().any()
    for policy in ("error", "drop", "keep"):
        config.DataConfig(duplicates=policy).validate()
    for bad in ("Keep", "ignore", 1):
        with pytest.raises(ConfigError, match=r"data.duplicates must be one of \['error', 'drop', 'keep'\]"):
            config.DataConfig(duplicates=bad).validate()
