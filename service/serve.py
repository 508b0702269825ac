"""Run the app under gunicorn from Python, with the same config file the container uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from service.app import create_app

CONFIG_FILE = Path(__file__).with_name("gunicorn.conf.py")


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("config", str(CONFIG_FILE))
        self.load_config_from_file(str(CONFIG_FILE))
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app()


def run(bind: str = "127.0.0.1:8080", workers: int = 2) -> None:
    _Server({"bind": bind, "workers": workers}).run()
