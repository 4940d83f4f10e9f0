"""Importers: schedules users already have (celery beat, crontab files) as this project's TOML.

Each importer is pure: it turns what it was given (a beat schedule, a crontab's text) into
``ImportedJob`` records and one-line notes; ``toml_text`` renders them; the CLI does the I/O.
"""
