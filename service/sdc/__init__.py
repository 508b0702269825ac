"""Structured Data Capture (SDC) operations over the engine: ``$populate``. Calls ``service.assess``; the
engine never calls back into this package."""
