"""The shape the code keeps: features reach the kit only through readykit.feature.Setup."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.builtin import BuiltIns
from readykit.feature import Setup
from readykit.logging.config import LoggingConfig
from readykit.privacy import Privacy
from readykit.problem import send_problem
from readykit.section import Section
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio

SRC = Path(__file__).parents[1] / "src" / "readykit"
FEATURES = (
    "backup", "cache", "check", "dashboard", "deploy", "guards", "health", "jobs", "load",
    "logging", "metrics", "privacy", "records",
)  # fmt: skip


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("feature", FEATURES)
def test_no_feature_module_imports_the_kit(feature: str) -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in sorted((SRC / feature).rglob("*.py"))
        if {"readykit.kit", "readykit.ReadyKit"} & imported(path)
    ]
    assert offenders == []


# the runtime features (the CLI verbs load the whole Settings to run; their cli.py may too)
RUNTIME = ("cache", "dashboard", "guards", "health", "jobs", "logging", "metrics", "privacy",
           "records")  # fmt: skip


@pytest.mark.parametrize("feature", RUNTIME)
def test_a_feature_reads_its_own_section_not_the_settings(feature: str) -> None:
    """Each feature's parameters are typed by its section (readykit.section); none imports the
    whole Settings, even for type checking."""
    offenders = [
        str(path.relative_to(SRC))
        for path in sorted((SRC / feature).rglob("*.py"))
        if path.name != "cli.py" and {"readykit.settings", "readykit.Settings"} & imported(path)
    ]
    assert offenders == []


def test_settings_is_every_section_and_nothing_else() -> None:
    """Settings adds no field of its own; each field is declared by exactly one section, so a
    feature's section is the one definition of its settings and their validation."""
    sections = [base for base in Settings.__mro__ if issubclass(base, Section)]
    sections.remove(Settings)
    declared = [name for section in sections for name in section.__annotations__]
    assert sorted(declared) == sorted(Settings.model_fields)
    modules = {section.__module__ for section in sections}
    assert {m.split(".")[1] for m in modules} >= set(RUNTIME)


class Teapot:
    """The third-party feature of readykit.feature's docstring."""

    name = "teapot"

    def install(self, setup: Setup) -> None:
        async def brew(scope: object, receive: object, send: object) -> None:
            await send_problem(send, 418, "I'm a teapot.")  # type: ignore[arg-type]

        setup.add_ops_route("/teapot", brew)  # type: ignore[arg-type]


async def test_a_third_party_feature_installs_through_setup() -> None:
    kit = ReadyKit(Settings(records=False, configure_logging=False))
    kit.add_feature(Teapot())

    async def app(scope: object, receive: object, send: object) -> None: ...

    wrapped = kit.wrap(app)  # type: ignore[arg-type]
    assert (await asgi_request(wrapped, "GET", "/teapot")).status == 418
    with pytest.raises(ConfigurationError, match="after wrap"):
        kit.add_feature(Teapot())


class BrewConfig(Section):
    """A third party's section: its own variables, validated by its own model."""

    teapot_strength: int = Field(default=3, ge=1, description="How strong the tea is.")
    teapot_token: SecretStr | None = Field(default=None, min_length=16)


class StrongTeapot:
    name = "strong-teapot"

    def install(self, setup: Setup) -> None:
        config = setup.section(BrewConfig)

        async def brew(scope: object, receive: object, send: object) -> None:
            detail = f"Strength {config.teapot_strength}."
            await send_problem(send, 418, detail)  # type: ignore[arg-type]

        setup.add_ops_route("/teapot", brew)  # type: ignore[arg-type]


async def test_a_third_party_section_is_read_and_validated_like_the_kits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("READYKIT_TEAPOT_STRENGTH", "5")
    kit = ReadyKit(Settings(records=False, configure_logging=False))
    assert kit.section(LoggingConfig) is kit.settings  # a built-in section: the kit's own
    kit.add_feature(StrongTeapot())

    async def app(scope: object, receive: object, send: object) -> None: ...

    wrapped = kit.wrap(app)  # type: ignore[arg-type]
    assert "Strength 5." in (await asgi_request(wrapped, "GET", "/teapot")).body.decode()

    monkeypatch.setenv("READYKIT_TEAPOT_STRENGTH", "0")
    monkeypatch.setenv("READYKIT_TEAPOT_TOKEN", "12345")
    other = ReadyKit(Settings(records=False, configure_logging=False))
    with pytest.raises(ConfigurationError) as refused:
        other.add_feature(StrongTeapot())
    assert str(refused.value).startswith(
        "READYKIT_TEAPOT_STRENGTH: Input should be greater than or equal to 1 (got '0')"
    )
    monkeypatch.setenv("READYKIT_TEAPOT_STRENGTH", "4")
    monkeypatch.setenv("READYKIT_TEAPOT_TOKEN", "hunter2")
    with pytest.raises(ConfigurationError) as secret:
        other.add_feature(StrongTeapot())
    assert str(secret.value).startswith("READYKIT_TEAPOT_TOKEN: Value should have at least 16")
    assert "hunter2" not in str(secret.value)  # a secret's value is never shown


def test_the_kit_installs_its_own_features_as_it_installs_a_third_partys() -> None:
    """The kit iterates features it does not know: its own come from readykit.builtin and go
    through add_feature like anyone's; kit.py calls no feature's install function by name."""
    kit = ReadyKit(Settings(records=False, configure_logging=False))
    names = [feature.name for feature in kit.features]
    assert names == ["guards", "cache", "records", "privacy", "dashboard", "jobs"]
    kit.add_feature(Teapot())
    assert kit.features[-1].name == "teapot"
    called = {
        node.func.id
        for node in ast.walk(ast.parse((SRC / "kit.py").read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not {name for name in called if name.startswith("install_")}


def test_a_built_in_feature_installs_after_the_features_it_is_handed() -> None:
    built_in = BuiltIns(Privacy())
    order = list(built_in)
    for position, feature in enumerate(order):
        handed = [v for v in vars(feature).values() if any(v is f for f in order)]
        assert all(order.index(dependency) < position for dependency in handed), feature.name
    # the dependencies are there to find: privacy, dashboard and jobs are each handed some
    assert {f.name for f in order if any(any(v is g for g in order) for v in vars(f).values())} == {
        "privacy",
        "dashboard",
        "jobs",
    }
