import readykit


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(readykit.__all__) == [
        "CheckRegistrationError",
        "ConfigurationError",
        "Observation",
        "ReadyKit",
        "ReadykitError",
        "RequestRecord",
        "Settings",
        "StartupCheckFailed",
        "current_request_id",
    ]
    for name in readykit.__all__:
        assert getattr(readykit, name).__module__.startswith("readykit")


def test_readykit_without_arguments_reads_settings_from_env(monkeypatch) -> None:
    monkeypatch.setenv("READYKIT_SERVICE_NAME", "quotes")
    kit = readykit.ReadyKit()
    assert kit.settings.service_name == "quotes"
    for name in ("wrap", "check", "add_check", "add_recorder"):
        assert callable(getattr(kit, name))
