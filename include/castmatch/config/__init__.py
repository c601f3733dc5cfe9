"""Roadmap configuration: YAML folder -> typed, cross-checked models."""

from castmatch.config.errors import ConfigError, ConfigIssue
from castmatch.config.loader import RoadmapConfig, default_roadmap_dir, load_roadmap, load_roadmap_cached

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "RoadmapConfig",
    "default_roadmap_dir",
    "load_roadmap",
    "load_roadmap_cached",
]
