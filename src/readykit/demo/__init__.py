"""The bundled example service: customers, quotes in many currencies, Bank of Russia rates."""

from readykit.demo.app import build, create_app
from readykit.demo.server import run
from readykit.demo.settings import DemoSettings

__all__ = ["DemoSettings", "build", "create_app", "run"]
