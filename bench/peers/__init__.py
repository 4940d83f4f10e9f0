"""celery beat and RedBeat, installed from the package registry into bench/.venv-peers."""
