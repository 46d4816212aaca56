from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# The trailing slash is optional: a POST without it must not become a redirect.
router.trailing_slash = "/?"
router.register("webhooks", views.SubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
