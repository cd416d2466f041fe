"""Configuration: defaults, and a bad value stops the start with one line naming the variable."""
import os
import subprocess
import sys

import pytest

from live.config import ConfigError, load_settings


def test_defaults_need_nothing(tmp_path):
    s = load_settings({"LIVE_DATA_DIR": str(tmp_path)})
    assert s.port == 8080 and s.host == "127.0.0.1"
    assert s.database_url is None and s.redis_url is None
    assert len(s.jwt_secret) >= 32
    # the generated development secret is kept, so tokens survive a restart
    assert load_settings({"LIVE_DATA_DIR": str(tmp_path)}).jwt_secret == s.jwt_secret


@pytest.mark.parametrize("var,value,needle", [
    ("PORT", "eighty", "PORT"),
    ("PORT", "70000", "PORT"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
    ("REDIS_URL", "http://localhost", "REDIS_URL"),
    ("JWT_SECRET", "short", "JWT_SECRET"),
    ("CORS_ORIGINS", "example.com", "CORS_ORIGINS"),
    ("LIVE_ENV", "staging", "LIVE_ENV"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL"),
    ("SMTP_URL", "mail.example.com", "SMTP_URL"),
    ("PUBLIC_URL", "ftp://x", "PUBLIC_URL"),
    ("GC_THRESHOLDS", "10000,20", "GC_THRESHOLDS"),
    ("GC_THRESHOLDS", "10000,0,100", "GC_THRESHOLDS"),
])
def test_bad_value_names_the_variable(tmp_path, var, value, needle):
    with pytest.raises(ConfigError) as exc:
        load_settings({"LIVE_DATA_DIR": str(tmp_path), var: value})
    line = str(exc.value)
    assert needle in line and "\n" not in line


def test_production_requires_secret(tmp_path):
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings({"LIVE_DATA_DIR": str(tmp_path), "LIVE_ENV": "production"})


def test_gc_thresholds(tmp_path):
    env = {"LIVE_DATA_DIR": str(tmp_path)}
    assert load_settings(env).gc_thresholds == (10_000, 50, 100)
    assert load_settings({**env, "GC_THRESHOLDS": " 2000, 10 ,50"}).gc_thresholds == (2000, 10, 50)
    assert load_settings({**env, "GC_THRESHOLDS": "default"}).gc_thresholds is None


def test_cors_list(tmp_path):
    s = load_settings({"LIVE_DATA_DIR": str(tmp_path), "CORS_ORIGINS": "https://a.example, http://localhost:3000"})
    assert s.cors_origins == ("https://a.example", "http://localhost:3000")


def test_serve_with_bad_env_exits_with_one_clear_line(tmp_path):
    env = {**os.environ, "PORT": "not-a-port", "LIVE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "live", "serve"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["configuration error: PORT Input should be a valid integer, unable to parse string as an integer"]


def test_env_example_lists_every_variable():
    from pathlib import Path

    from live.config import FIELDS

    listed = {line.split("=", 1)[0]
              for line in Path(__file__).parents[2].joinpath(".env.example").read_text().splitlines()
              if line and not line.startswith("#")}
    assert listed == set(FIELDS)
