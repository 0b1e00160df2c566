"""Pure compute library run by Celery workers.

Contract (checked by import-linter in `make test`): nothing here imports Django, `apps` or
`vivecaption_site`. Functions take plain data and `*Config` dataclasses, return `*Result`s.
"""
