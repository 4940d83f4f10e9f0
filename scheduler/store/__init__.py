"""Scheduler state in Redis: key templates, Lua scripts and the operations built on them."""
