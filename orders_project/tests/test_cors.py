def test_allowed_origins_pass_the_preflight(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    response = client.options(
        "/api/v1/auth/token/",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-api-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "x-api-key" in response["Access-Control-Allow-Headers"].lower()


def test_allowed_origins_can_read_the_request_id(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    response = client.get("/healthz", HTTP_ORIGIN="https://shop.example.com")
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "X-Request-ID" in response["Access-Control-Expose-Headers"]


def test_other_origins_get_no_cors_headers(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    response = client.get("/healthz", HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response
