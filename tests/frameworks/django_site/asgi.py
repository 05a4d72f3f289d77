"""The Django project under readykit, as the README shows; static files served for the admin."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from readykit import ReadyKit
from readykit.contrib.django import principal, route_template

kit = ReadyKit(route_template=route_template, principal=principal)
application = kit.wrap(ASGIStaticFilesHandler(get_asgi_application()))
