"""Marks each test by its folder, so `-m unit` / `-m integration` / `-m fault` select them."""

from __future__ import annotations

import pytest

_FOLDER_MARKERS = ("unit", "integration", "fault", "packaging")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for folder in _FOLDER_MARKERS:
            if f"/tests/{folder}/" in str(item.path):
                item.add_marker(folder)
