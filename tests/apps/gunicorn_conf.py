"""gunicorn config for the multiprocess metrics test: the documented child_exit hook."""

from readykit.metrics import gunicorn_child_exit

child_exit = gunicorn_child_exit
