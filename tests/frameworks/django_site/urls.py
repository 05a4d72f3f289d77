from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from django_site import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("me/", views.me),
    path("greeting/", views.greeting),
    path("items/<int:item_id>/", views.item),
    path("api/login/", views.api_login),
    path("create/", views.create),
    path("boom/", views.boom),
    path("warn/", views.warn),
    # Django's own password reset link: the token is in the path
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view()),
]
