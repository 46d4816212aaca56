"""The SQL statements of one request of each kind, shared by the project's
jobs (bench/django_jobs.py) and the baseline's (bench/baseline/jobs.py): each
request is made once first, so one-off work (the first connection, lazy
imports) does not count, then counted with no test transaction around it."""


def count_queries(requests: dict) -> dict:
    """`requests`: name -> a function making the request (a test client call)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    for name, send in requests.items():
        send()
        with CaptureQueriesContext(connection) as captured:
            response = send()
        results[name] = {
            "queries": len(captured),
            "status": response.status_code,
            "sql": [query["sql"] for query in captured],
        }
    return results
