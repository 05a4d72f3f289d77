import pytest

from readykit import ConfigurationError
from readykit.route_table import RouteTable, route_path


def table() -> RouteTable[int]:
    return RouteTable(
        {
            "default": 0,
            "POST /login": 1,
            "/login": 2,
            "GET /quotes/{quote_id:int}": 3,
            "/files/{rest:path}": 4,
            "get /rates/{code}": 5,
        },
        setting="rate_limits",
    )


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/login", ("POST /login", 1)),
        ("GET", "/login", ("/login", 2)),
        ("GET", "/quotes/42", ("GET /quotes/{quote_id:int}", 3)),
        ("POST", "/quotes/42", None),
        ("GET", "/quotes/42/lines", None),
        ("DELETE", "/files/a/b/c", ("/files/{rest:path}", 4)),
        ("GET", "/rates/USD", ("get /rates/{code}", 5)),
        ("GET", "/default", None),
    ],
)
def test_match(method: str, path: str, expected: tuple[str, int] | None) -> None:
    found = table().match(method, path)
    assert (None if found is None else (found.key, found.value)) == expected


def test_method_specific_key_wins_over_any_method_key() -> None:
    t = RouteTable({"/items/{id}": "any", "PUT /items/{id}": "put"}, setting="s")
    assert t.match("PUT", "/items/1").value == "put"  # type: ignore[union-attr]
    assert t.match("GET", "/items/1").value == "any"  # type: ignore[union-attr]


@pytest.mark.parametrize("key", ["login", "FETCH /x", "POST /a /b", "GET /x/{y:weird}"])
def test_bad_keys_name_the_setting(key: str) -> None:
    with pytest.raises(ConfigurationError, match="max_body_routes"):
        RouteTable({key: 1}, setting="max_body_routes")


def test_empty_table_is_falsy() -> None:
    assert not RouteTable({"default": 1}, setting="s")


def test_a_lower_case_method_matches_its_key() -> None:
    """h11 passes `post` through and Django serves it as POST: it must not escape `POST /login`."""
    assert table().match("post", "/login").key == "POST /login"  # type: ignore[union-attr]


def test_head_takes_the_get_key_unless_it_has_its_own() -> None:
    """Frameworks answer HEAD with the GET handler, so a GET limit must count HEAD too."""
    t = RouteTable({"GET /export": "get", "HEAD /only": "head", "GET /only": "get"}, setting="s")
    assert t.match("HEAD", "/export").value == "get"  # type: ignore[union-attr]
    assert t.match("HEAD", "/only").value == "head"  # type: ignore[union-attr]
    assert table().match("HEAD", "/quotes/42").key == "GET /quotes/{quote_id:int}"  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/login/", "//login", "/login//", "///login///", "login"])
def test_doubled_and_trailing_slashes_take_the_routes_key(path: str) -> None:
    """Litestar serves `POST /login/` and `POST //login` with the `/login` handler: a limit on
    `POST /login` must hold for them."""
    found = table().match("POST", path)
    assert found is not None
    assert found.key == "POST /login"


@pytest.mark.parametrize("path", ["/files/", "/files//", "/files/a/b", "/files"])
def test_a_path_parameter_takes_an_empty_rest(path: str) -> None:
    """Starlette serves `/files/{rest:path}` for `/files/` (rest ""): it folds to `/files`."""
    found = table().match("DELETE", path)
    assert found is not None
    assert found.key == "/files/{rest:path}"
    assert table().match("DELETE", "/filesystem") is None


def test_a_key_written_with_a_trailing_slash_matches_both_spellings() -> None:
    t = RouteTable({"POST /login/": 1, "/files/{name}/": 2}, setting="s")
    for method, path, value in [
        ("POST", "/login", 1),
        ("POST", "/login/", 1),
        ("GET", "/files/a", 2),
        ("GET", "/files/a/", 2),
    ]:
        found = t.match(method, path)
        assert found is not None
        assert found.value == value
    assert t.match("GET", "/") is None


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/api/items", "/api", "/items"),  # uvicorn --root-path: the path carries the prefix
        ("/api", "/api", "/"),
        ("/items", "/api", "/items"),  # a server that strips it itself
        ("/apix/items", "/api", "/apix/items"),  # not a segment boundary
        ("/items", "", "/items"),
    ],
)
def test_route_path_drops_the_root_path_prefix(path: str, root_path: str, expected: str) -> None:
    assert route_path({"type": "http", "path": path, "root_path": root_path}) == expected
