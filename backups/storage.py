"""The backup storage: `STORAGES["backups"]`, chosen by BACKUP_STORAGE_URL —
a folder (`file:///…`, the default `var/backups`) or S3 and anything that
speaks its protocol (`s3://bucket/prefix`: MinIO, moto's server), through
django-storages."""

from django.core.files.storage import storages


def backup_storage():
    return storages["backups"]
