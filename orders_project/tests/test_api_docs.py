import pytest

from accounts.tests.helpers import bearer_client

pytestmark = pytest.mark.django_db


def test_the_schema_documents_auth_schemes_and_error_responses(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwtAuth"]["scheme"] == "bearer"
    assert schemes["ApiKeyAuth"] == {**schemes["ApiKeyAuth"], "in": "header", "name": "X-API-Key"}
    me = schema["paths"]["/api/v1/auth/me/"]["get"]
    assert {"jwtAuth": []} in me["security"] and {"ApiKeyAuth": []} in me["security"]
    assert {"200", "401", "500"} <= set(me["responses"])
    register = schema["paths"]["/api/v1/auth/register/"]["post"]
    assert {"201", "400", "429"} <= set(register["responses"])


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_their_assets_from_this_server(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_the_sidecar_assets_are_served(client):
    response = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200


def assert_documented(client, path: str, method: str, response):
    """The response body validates against the schema's entry for its status."""
    import jsonschema

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    documented = schema["paths"][path][method]["responses"][str(response.status_code)]
    body_schema = documented["content"]["application/json"]["schema"]
    root = _as_json_schema({**body_schema, "components": schema["components"]})
    jsonschema.validate(response.json(), root)


def _as_json_schema(node):
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


def test_errors_inside_lists_conform_to_the_documented_error_schema(client, user):
    response = bearer_client(user).post(
        "/api/v1/orders/", {"items": [{"product_id": 10**9, "quantity": 0}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "items.0.quantity"
    assert_documented(client, "/api/v1/orders/", "post", response)


@pytest.mark.parametrize(
    ("header", "code"),
    [("Bearer", "bad_authorization_header"), ("Bearer not-a-jwt", "token_not_valid")],
)
def test_simplejwt_401_codes_are_documented(client, header, code):
    response = client.get("/api/v1/orders/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == code
    assert_documented(client, "/api/v1/orders/", "get", response)
