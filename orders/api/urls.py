from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# The trailing slash is optional: a POST without it must not become a redirect.
router.trailing_slash = "/?"
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = router.urls
