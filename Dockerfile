FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings but no database or secret worth keeping.
# var/backups exists, owned by app, so that the compose volume mounted there is writable.
RUN DEBUG=0 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /app/var/backups \
    && chown -R app:app /app
USER app

EXPOSE 8000
CMD ["gunicorn", "orders_project.wsgi:application", "--config", "gunicorn.conf.py"]
