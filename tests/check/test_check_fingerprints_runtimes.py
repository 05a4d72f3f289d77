"""Debug output of PHP, Ruby and Go, produced by the real runtimes here and fetched over HTTP.

PHP's built-in server answers an uncaught exception with `display_errors` on, and phpinfo();
a Ruby server answers with the exception's real backtrace (`full_message`); a Go net/http
server with the recover-and-print middleware many development setups use answers with
`debug.Stack()`. The fingerprints must recognise each; the check sees it whatever the status.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from readykit.check.fingerprints import debug_output
from readykit.serve import serve
from support import need_binary

RUBY_SERVER = r"""
require "socket"
server = TCPServer.new("127.0.0.1", Integer(ARGV[0]))
def find_user(params) = params.fetch(:name)
loop do
  client = server.accept
  client.gets
  body = begin
    find_user({})
  rescue => e
    e.full_message(highlight: false)
  end
  client.write("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n" \
               "Content-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
  client.close
end
"""

GO_SERVER = """package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
)

func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if err := recover(); err != nil {
				w.WriteHeader(500)
				fmt.Fprintf(w, "panic: %v\\n\\n%s", err, debug.Stack())
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func items(w http.ResponseWriter, r *http.Request) {
	ids := []int{1, 2, 3}
	n := len(r.URL.Path)
	fmt.Fprint(w, ids[n])
}

func main() {
	http.Handle("/", recoverer(http.HandlerFunc(items)))
	http.ListenAndServe("127.0.0.1:"+os.Args[1], nil)
}
"""


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return str(error.read().decode())


def test_php_uncaught_exception_and_phpinfo(tmp_path: Path) -> None:
    php = need_binary("php")
    (tmp_path / "index.php").write_text(
        '<?php\nfunction parse($x) { throw new Exception("boom"); }\nparse("x");\n'
    )
    (tmp_path / "info.php").write_text("<?php phpinfo();\n")
    argv = [php, "-d", "display_errors=1", "-d", "html_errors=1", "-S", "{host}:{port}"]
    with serve([*argv, "-t", str(tmp_path)], cwd=tmp_path) as server:
        assert debug_output(fetch(f"{server.url}/index.php")) == "PHP error or stack trace"
        assert debug_output(fetch(f"{server.url}/info.php")) == "phpinfo page"


def test_ruby_backtrace(tmp_path: Path) -> None:
    ruby = need_binary("ruby")
    script = tmp_path / "server.rb"
    script.write_text(RUBY_SERVER)
    with serve([ruby, str(script), "{port}"], cwd=tmp_path) as server:
        body = fetch(f"{server.url}/users")
    assert "(KeyError)" in body  # the runtime's own words
    assert debug_output(body) == "Ruby backtrace"


@contextmanager
def go_server(tmp_path: Path) -> Iterator[str]:
    go = need_binary("go")
    (tmp_path / "main.go").write_text(GO_SERVER)
    env = {**os.environ, "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "cache"),
           "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}  # fmt: skip
    built = subprocess.run(
        [go, "build", "-o", str(tmp_path / "server"), str(tmp_path / "main.go")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    with serve([str(tmp_path / "server"), "{port}"], cwd=tmp_path) as server:
        yield server.url


def test_go_panic_printed_by_a_recover_middleware(tmp_path: Path) -> None:
    with go_server(tmp_path) as url:
        body = fetch(f"{url}/items/7")
    assert body.startswith("panic: runtime error: index out of range")
    assert debug_output(body) == "Go panic"
