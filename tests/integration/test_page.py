"""The web page in a real headless browser (Debian's chromium via chromedriver)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# SEQ2SEQ_PAGE_SCREENSHOT=docs/images/page.png keeps the screenshot for the docs.
SCREENSHOT = os.environ.get("SEQ2SEQ_PAGE_SCREENSHOT")


def _browse(port: int, screenshot: Path) -> dict[str, object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "target")).options) >= 3)
        Select(driver.find_element(By.ID, "target")).select_by_value("fr")
        text = driver.find_element(By.ID, "text")
        text.clear()
        text.send_keys("Lua bindings for Pure Data")
        driver.find_element(By.ID, "go").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "done"))
        cells = driver.find_elements(By.CSS_SELECTOR, "#heat table.heat td")
        columns = driver.find_elements(By.CSS_SELECTOR, "#heat table.heat thead th")
        result = {
            "output": driver.find_element(By.ID, "output").text,
            "nbest": [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#nbest li")],
            "cells": len(cells),
            "columns": [th.text for th in columns[1:]],
            "weights": [float(c.get_attribute("data-weight") or 0) for c in cells],
            "error": driver.find_element(By.ID, "error").text,
        }
        driver.save_screenshot(str(screenshot))
        return result
    finally:
        driver.quit()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")
async def test_the_page_translates_and_draws_attention(server, tmp_path):
    target = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "page.png"
    seen = await asyncio.to_thread(_browse, server.http_port, target)
    assert seen["error"] == ""
    assert seen["output"] and seen["output"] != "Lua bindings for Pure Data"
    assert len(seen["nbest"]) == 3  # beam 4, n-best 3 are the page's defaults
    assert "▁Lua" in seen["columns"]
    rows = seen["cells"] // len(seen["columns"])
    assert rows >= 2 and seen["cells"] == rows * len(seen["columns"])
    row_sums = [
        sum(seen["weights"][r * len(seen["columns"]) : (r + 1) * len(seen["columns"])])
        for r in range(rows)
    ]
    assert all(abs(s - 1) < 0.02 for s in row_sums)  # soft attention: each row sums to 1
    assert target.stat().st_size > 10_000
