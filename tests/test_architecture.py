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
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio

SRC = Path(__file__).parents[1] / "src" / "readykit"
KIT = "readykit.kit"
# a user of the kit, not a part of it: the bundled example service builds a ReadyKit
NOT_FEATURES = ("demo",)


def module_name(path: Path) -> str:
    """`readykit.dashboard.jobs` for src/readykit/dashboard/jobs.py (a package: its name)."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(path: Path, module: str | None, level: int, package: str | None = None) -> str:
    """The absolute name of `module` imported `level` dots up from `path` (or from `package`,
    as `import_module` takes it)."""
    if level == 0:
        return module or ""
    if package is not None:
        base = package.split(".")
    else:
        base = module_name(path).split(".")
        if path.name != "__init__.py":
            base = base[:-1]  # a module's relative imports start at its package
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imported(path: Path) -> set[str]:
    """Every module (and `module.name`) `path` imports: absolute, relative (resolved), and by
    `importlib.import_module(...)` or `__import__(...)` with a literal name, type-checking
    imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = resolve(path, node.module, node.level)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and (name := dynamic_import(node)) is not None:
            package = next((k.value for k in node.keywords if k.arg == "package"), None)
            level = len(name) - len(name.lstrip("."))
            within = package.value if isinstance(package, ast.Constant) else None
            names.add(resolve(path, name[level:] or None, level, within))
    return names


def dynamic_import(call: ast.Call) -> str | None:
    """The literal module name of an `import_module(...)` or `__import__(...)` call."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not call.args:
        return None
    name = call.args[0]
    return name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None


def imports_the_kit(names: set[str]) -> bool:
    return any(
        name == KIT or name.startswith(f"{KIT}.") or name == "readykit.ReadyKit" for name in names
    )


def source_of(module: str) -> Path:
    """The file of `module` under src/readykit (a package: its __init__.py)."""
    path = SRC.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def feature_modules() -> list[Path]:
    """Every module of every subpackage of readykit (a feature, found by listing, so a new one
    is covered), and the module of each built-in feature wherever it lives."""
    packages = [
        d
        for d in sorted(SRC.iterdir())
        if (d / "__init__.py").is_file() and d.name not in NOT_FEATURES
    ]
    modules = {path for package in packages for path in package.rglob("*.py")}
    for feature in BuiltIns(Privacy()):
        modules.add(source_of(type(feature).__module__))
    return sorted(modules)


def test_the_features_are_found_by_listing_the_package() -> None:
    found = {path.relative_to(SRC).parts[0] for path in feature_modules()}
    assert {"cache", "dashboard", "guards", "jobs", "privacy", "records"} <= found
    assert not found & set(NOT_FEATURES)


def test_no_feature_module_imports_the_kit() -> None:
    offenders = [
        str(path.relative_to(SRC)) for path in feature_modules() if imports_the_kit(imported(path))
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


async def refused(kit: ReadyKit) -> str:
    """The one line a kit refuses to start with: kept by add_feature, not raised at import
    time (as an invalid built-in setting is kept by ReadyKit()), and failing lifespan startup."""

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never reached")

    assert kit.config_error is not None
    wrapped = kit.wrap(app)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError) as startup:
        async with lifespan(wrapped):
            pass
    assert str(startup.value) == str(kit.config_error)
    assert "\n" not in str(kit.config_error)
    assert (await asgi_request(wrapped, "GET", "/teapot")).status == 503
    return str(kit.config_error)


async def test_a_third_party_sections_mistake_refuses_startup_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("READYKIT_TEAPOT_STRENGTH", "0")
    monkeypatch.setenv("READYKIT_TEAPOT_TOKEN", "12345")
    other = ReadyKit(Settings(records=False, configure_logging=False))
    other.add_feature(StrongTeapot())  # no exception at import time
    assert (await refused(other)).startswith(
        "READYKIT_TEAPOT_STRENGTH: Input should be greater than or equal to 1 (got '0')"
    )
    monkeypatch.setenv("READYKIT_TEAPOT_STRENGTH", "4")
    monkeypatch.setenv("READYKIT_TEAPOT_TOKEN", "hunter2")
    third = ReadyKit(Settings(records=False, configure_logging=False))
    third.add_feature(StrongTeapot())
    secret = await refused(third)
    assert secret.startswith("READYKIT_TEAPOT_TOKEN: Value should have at least 16")
    assert "hunter2" not in secret  # a secret's value is never shown


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
