"""The Argon2id profiles: full strength by default, a fast one for tests that production refuses."""

import pytest
from argon2 import extract_parameters

from app.config import ConfigError, Settings, check_production_safety, get_settings
from app.security import passwords


@pytest.fixture
def profile(monkeypatch):
    def use(name: str) -> None:
        monkeypatch.setenv("PASSWORD_HASH_PROFILE", name)
        get_settings.cache_clear()
        passwords._hasher.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    passwords._hasher.cache_clear()


def test_the_standard_profile_is_rfc_9106_low_memory(profile):
    profile("standard")
    parameters = extract_parameters(passwords.hash_password("quartz-meadow-ferry-41"))
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (3, 65536, 4)


def test_hashes_of_either_profile_verify_under_the_other(profile):
    profile("fast")
    fast_hash = passwords.hash_password("quartz-meadow-ferry-41")
    assert extract_parameters(fast_hash).memory_cost == 1024
    profile("standard")
    assert passwords.verify_password("quartz-meadow-ferry-41", fast_hash)
    assert not passwords.verify_password("quartz-meadow-ferry-42", fast_hash)
    standard_hash = passwords.hash_password("quartz-meadow-ferry-41")
    profile("fast")
    assert passwords.verify_password("quartz-meadow-ferry-41", standard_hash)


def test_the_profile_follows_app_env_unless_set():
    assert Settings(app_env="test").hash_profile == "fast"
    assert Settings(app_env="development").hash_profile == "standard"
    assert Settings(app_env="production").hash_profile == "standard"
    assert Settings(app_env="development", password_hash_profile="fast").hash_profile == "fast"


def test_production_refuses_the_fast_profile():
    settings = Settings(app_env="production", secret_key="k" * 48, database_url="postgresql://db/riskdesk",
                        password_hash_profile="fast")
    with pytest.raises(ConfigError, match="PASSWORD_HASH_PROFILE"):
        check_production_safety(settings)
    check_production_safety(settings.model_copy(update={"password_hash_profile": "standard"}))
