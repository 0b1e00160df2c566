# Load the Celery app whenever Django starts so that `transaction.on_commit` enqueues use it.
from vivecaption_site.celery import app as celery_app

__all__ = ("celery_app",)
