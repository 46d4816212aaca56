from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# The trailing slash is optional: a POST without it must not become a redirect.
router.trailing_slash = "/?"
router.register("products", views.ProductViewSet, basename="product")

urlpatterns = router.urls
