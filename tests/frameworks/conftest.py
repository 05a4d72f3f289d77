from django_site_fixtures import django_site

__all__ = ["django_site"]
