import pytest

from accounts import sms_backends


@pytest.fixture
def sms_outbox(settings):
    """The texts sent through the `locmem` SMS backend, as `mailoutbox` is for mail."""
    settings.SMS_BACKEND = "locmem"
    sms_backends.outbox.clear()
    yield sms_backends.outbox
    sms_backends.outbox.clear()


@pytest.fixture
def sending(celery_eager, django_capture_on_commit_callbacks):
    """Run what a request queues after commit, the sending task included,
    before the test goes on: `with sending(): client.post(...)`."""

    def capture():
        return django_capture_on_commit_callbacks(execute=True)

    return capture
