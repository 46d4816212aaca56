"""Reading Prometheus text the way Prometheus does, for the metrics tests."""

from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-test-token-0123456789"

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels (the parser refuses
    what Prometheus would refuse, such as a name declared twice)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels) -> float | None:
    """One sample's value; None when the exposition does not have it."""
    return samples.get((name, frozenset(labels.items())))


def scrape(client, token: str = TOKEN) -> Samples:
    """GET /metrics through a Django test client, with the bearer token."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def database_url() -> str:
    """DATABASE_URL of the test database, for a server or worker the test starts."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
