from django.urls import re_path

from . import views

# The trailing slash is optional: `POST /auth/token` must not turn into a redirect.
urlpatterns = [
    re_path(r"^register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^token/?$", views.TokenObtainView.as_view(), name="auth-token"),
    re_path(r"^token/refresh/?$", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^logout-all/?$", views.LogoutAllView.as_view(), name="auth-logout-all"),
    re_path(r"^me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^otp/start/?$", views.OtpStartView.as_view(), name="auth-otp-start"),
    re_path(r"^otp/verify/?$", views.OtpVerifyView.as_view(), name="auth-otp-verify"),
]
