"""Configuration: pydantic models, one per pipeline, built from shared sections (`data`, `simulate`,
`snapshots`, `split`, `model`, `clv`, `segments`, `rollout`) and shared setting types (dates, durations,
periods, output paths). YAML file and `--set key=value` overrides merge onto the built-in defaults; a bad value
is a ConfigError naming the dotted key. This package imports nothing from the rest of custval but `units` and
`errors`: every layer may import it.
"""

from custval.config.describe import describe
from custval.config.loading import (
    Section,
    build_config,
    config_error,
    load_yaml,
    merge,
    parse_overrides,
    parse_value,
    set_dotted,
    validate_config,
)
from custval.config.pipelines import (
    PIPELINES,
    ChurnConfig,
    CLVConfig,
    JobConfig,
    PropensityConfig,
    ScoreConfig,
    SegmentJobConfig,
    SnapshotJobConfig,
    TrainingConfig,
    UpliftCampaignConfig,
    UpliftConfig,
)
from custval.config.sections import (
    DEFAULT_GRID,
    DEFAULT_TIER_CUTS,
    DEFAULT_TIER_NAMES,
    SIMULATE,
    CancellationSettings,
    CategorySettings,
    CLVModelSettings,
    CLVSource,
    DataConfig,
    LogDataConfig,
    ModelSettings,
    PropensityModelSettings,
    RolloutSettings,
    SegmentConfig,
    SimulateSettings,
    SnapshotSettings,
    SplitSettings,
    TableDataConfig,
    TreeSettings,
)
from custval.config.store import (
    DEFAULT_ARTIFACT_DIR,
    DEFAULT_TRACKING_URI,
    artifact_root,
    optuna_storage,
    sqlite_path,
    tracking_uri,
)
from custval.config.types import OUTPUT_SUFFIXES, SettingError, output_path

__all__ = [
    "DEFAULT_ARTIFACT_DIR", "DEFAULT_GRID", "DEFAULT_TIER_CUTS", "DEFAULT_TIER_NAMES", "DEFAULT_TRACKING_URI", "OUTPUT_SUFFIXES", "PIPELINES", "SIMULATE", "CLVConfig",
    "CLVModelSettings", "CLVSource", "CancellationSettings", "CategorySettings", "ChurnConfig", "DataConfig", "JobConfig", "ModelSettings",
    "LogDataConfig", "PropensityConfig", "PropensityModelSettings", "ScoreConfig", "RolloutSettings", "Section", "SegmentConfig",
    "SegmentJobConfig", "SettingError", "SimulateSettings", "SnapshotJobConfig", "SnapshotSettings",
    "SplitSettings", "TableDataConfig", "TrainingConfig", "TreeSettings", "UpliftCampaignConfig", "UpliftConfig", "artifact_root", "build_config",
    "config_error", "describe", "load_yaml", "merge", "optuna_storage", "output_path", "parse_overrides",
    "parse_value", "set_dotted", "sqlite_path", "tracking_uri", "validate_config",
]
