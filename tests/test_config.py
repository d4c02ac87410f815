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
        assert config.DataConfig(duplicates=policy).duplicates == policy
    for bad in ("Keep", "ignore", 1):
        with pytest.raises(ConfigError, match=r"data.duplicates must be one of \['error', 'drop', 'keep'\]"):
            config.DataConfig(duplicates=bad)


# ------------------------------------------------------------------------------------ the pydantic models
@pytest.mark.parametrize(("pipeline", "override", "message"), [
    # every failure names the dotted key, the rule and the value given
    ("churn", "snapshots.windows=[30, -1]", r"^snapshots\.windows\[1\] must be an integer >= 1, got -1$"),
    ("churn", "split.valid_fraction=1.5", r"^split\.valid_fraction must be a number in \(0, 1\), got 1\.5$"),
    ("clv", "top_n=abc", r"^top_n must be an integer, got 'abc'$"),
    ("clv", "top_n=-3", r"^top_n must be an integer >= 1, got -3$"),
    ("clv", "experiment=", r"^experiment must be a non-empty name, got None$"),
    ("clv", "refit_full=maybe", r"^refit_full must be true or false, got 'maybe'$"),
    ("clv", "refit_full=1", r"^refit_full must be true or false, got 1$"),
    ("clv", "annual_discount_rate=true", r"^annual_discount_rate must be a finite number, got True$"),
    ("clv", "holdout=abc", r"^holdout must be a positive duration with its unit D/W/M/Y"),
    ("clv", "calibration_end=12/04/2011", r"^calibration_end must be a date in ISO 8601 form .*'12/04/2011'$"),
    ("clv", "output=out/clv.xlsx", r"^output must be a file name ending with one of \['\.parquet'"),
    ("clv", "data=3", r"^data must be a mapping of settings with keys from \['cancellations', 'categories', 'columns', "
            r"'duplicates'"),
    ("clv", "data.typo=1", r"^data: unknown keys \['typo'\]; allowed: \['cancellations', 'categories', 'columns', "
            r"'duplicates', 'missing_ids', 'prices', 'returns'"),
    ("segment", "segments.ties=random", r"^segments\.ties must be one of \['shared', 'first'\], got 'random'$"),
    ("propensity", "categories=[]", r"^categories"),
])
def test_a_bad_setting_is_one_config_error_naming_the_dotted_key(pipeline, override, message):
    with pytest.raises(ConfigError, match=message):
        config.build_config(config.PIPELINES[pipeline], None, [override])


def test_an_output_that_is_a_directory_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match=r"^output must be a file path, but .* is an existing directory; give a "
                                          r"file such as '.*/scores\.parquet'$"):
        config.build_config(config.CLVConfig, None, [f"output={tmp_path}"])


def test_dates_follow_the_one_date_parser_and_are_written_back_as_iso_text():
    # yyyymmdd (YAML reads it as an int) is a date, not nanoseconds since 1970
    assert config.build_config(config.CLVConfig, None, ["calibration_end=19970930"]).calibration_end == "1997-09-30"
    assert config.build_config(config.CLVConfig, None, ["calibration_end=1997-09-30"]).calibration_end == "1997-09-30"
    late = config.build_config(config.SegmentJobConfig, None, ["as_of=1998-03-31T12:30:00"])
    assert late.as_of == "1998-03-31T12:30:00"


def test_set_values_that_are_not_yaml_are_taken_as_text():
    # a strftime format starts with %, which YAML cannot scan
    built = config.build_config(config.CLVConfig, None, ["data.timestamp_format=%d/%m/%Y %H:%M"])
    assert built.data.timestamp_format == "%d/%m/%Y %H:%M"
    assert config.parse_value("[30, 90]") == [30, 90] and config.parse_value("null") is None


def test_cross_setting_rules_are_checked_when_the_config_is_built():
    with pytest.raises(ConfigError, match=r"^calibration_end must be before observation_end \(1998-06-30\)"):
        config.build_config(config.CLVConfig, None, ["calibration_end=1998-07-01"])
    with pytest.raises(ConfigError, match=r"^holdout='39W' would be ignored: calibration_end is given"):
        config.build_config(config.CLVConfig, None, ["holdout=39W"])
    assert config.build_config(config.CLVConfig, None, ["calibration_end=null", "holdout=39w"]).holdout == "39W"
    with pytest.raises(ConfigError, match=r"^split\.test_fraction must leave rows to train on"):
        config.build_config(config.ChurnConfig, None, ["data.table=t.csv", "split.valid_fraction=0.5",
                                                       "split.test_fraction=0.5", "data.source=simulate"])


def test_describe_lists_every_key_with_its_default_and_a_description():
    rows = {key: (value, text) for key, value, text in config.describe(config.ChurnConfig())}
    assert rows["data.table"][0] == "null" and "customer table" in rows["data.table"][1]
    assert rows["snapshots.windows"][0] == "[30, 90, 180, 365]"
    assert rows["model.xgboost"][0].startswith('{"n_estimators": 2000')
    # a field whose default a pipeline changes keeps the base class's description
    assert rows["experiment"] == ("custval-churn", "MLflow experiment of the run.")
    # every leaf setting of every pipeline has a description
    for cls in config.PIPELINES.values():
        missing = [key for key, _, text in config.describe(cls()) if not text]
        assert not missing, f"{cls.__name__}: {missing}"


def test_config_imports_nothing_from_the_library_layers():
    import subprocess
    import sys

    code = ("import sys, custval.config; bad = sorted(m for m in sys.modules if m.startswith('custval.') and "
            "m.split('.')[1] not in ('config', 'errors', 'units')); print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
