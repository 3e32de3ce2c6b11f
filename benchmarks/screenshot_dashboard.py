"""The dashboard in a real browser: start the API and the dashboard on free ports over a run
folder (through the CLI: ``deadstock users add``, ``deadstock serve --import``, ``deadstock
dashboard``), then drive headless Chromium through Selenium: sign in with the token, open a
SKU, switch the what-if's coupons off and simulate, approve the SKU with a reason, and save
screenshots. The browser test (tests/service/test_browser_dashboard.py) runs the same
walk-through; this script makes the images in docs/img::

    .venv/bin/python benchmarks/screenshot_dashboard.py --run outputs/run --out docs/img

``--run`` is the output folder of ``deadstock run`` (``make run`` writes outputs/run, the
Complete Journey plan); without it the script makes a quick run on a small synthetic world
first. Needs Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1400, 1000)
START_S = 90
"""Seconds the API and the dashboard may take to start (the machine may be busy)."""
WAIT_S = 90
"""Seconds one step in the browser may take (a what-if and the alternatives are seconds)."""
REASON = "clears the stock before the season ends"
SCREENSHOTS = ("dashboard_overview.png", "dashboard_sku.png")


def chromium() -> tuple[str, str] | None:
    """Paths of Chromium and its driver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}):\n"
                               f"{log.read_text()[-3000:]}")  # fmt: skip
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {START_S} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _process(cmd: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            # its own session: stops Streamlit's server child as well
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class Stack:
    """The running API and dashboard, and the pricing lead's token."""

    api_url: str
    dashboard_url: str
    token: str
    db_url: str


@contextmanager
def running_stack(
    run_folder: Path, work: Path, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """``deadstock users add``, ``deadstock serve --import RUN`` and ``deadstock dashboard``
    on free ports, over a new SQLite database in ``work``."""
    env = {**os.environ, **(env or {})}
    db_url = f"sqlite:///{work / 'service.db'}"
    env["DEADSTOCK_DB_URL"] = db_url
    env["DEADSTOCK_EXPORTS_DIR"] = str(work / "exports")
    env["DEADSTOCK_RUNS_DIR"] = str(work / "runs")
    deadstock = str(BIN / "deadstock")
    added = subprocess.run([deadstock, "-q", "users", "add", "lena", "--role", "pricing_lead"],
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    token = added.stdout.strip().splitlines()[-1]
    api_port, dash_port = free_port(), free_port()
    api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    with ExitStack() as stack:
        api = stack.enter_context(_process(
            [deadstock, "serve", "--port", str(api_port), "--import", str(run_folder)],
            work / "serve.log", env))  # fmt: skip
        _wait_http(f"{api_url}/api/v1/health", api, work / "serve.log")
        dash = stack.enter_context(_process(
            [deadstock, "dashboard", "--api", api_url, "--port", str(dash_port)],
            work / "dashboard.log", env))  # fmt: skip
        _wait_http(f"{dash_url}/_stcore/health", dash, work / "dashboard.log")
        yield Stack(api_url, dash_url, token, db_url)


# ------------------------------------------------------------------------------ the browser
@contextmanager
def browser(paths: tuple[str, str], window: tuple[int, int] = WINDOW) -> Iterator[object]:
    """Headless Chromium with a fresh profile, through chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="deadstock-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        opts.add_argument(f"--window-size={window[0]},{window[1]}")
        opts.binary_location = paths[0]
        driver = webdriver.Chrome(options=opts, service=Service(paths[1]))
        try:
            yield driver
        finally:
            driver.quit()


def _retried() -> tuple[type[Exception], ...]:
    """Selenium's errors of an element not there yet, re-rendered or covered: the step
    looks again."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementReferenceException,
    )

    return (ElementClickInterceptedException, ElementNotInteractableException,
            NoSuchElementException, StaleElementReferenceException)  # fmt: skip


def _xpath_text(text: str) -> str:
    return f"//*[contains(text(), {text!r})]"


class Page:
    """Small, patient steps on a Streamlit page (it re-renders after every interaction, so
    elements are looked up again and stale ones retried)."""

    def __init__(self, driver) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.retried = _retried()

        self.d = driver
        self.wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.2)

    def find(self, by: str, what: str):
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((by, what)))

    def see(self, text: str):
        from selenium.webdriver.common.by import By

        return self.find(By.XPATH, _xpath_text(text))

    def click(self, by: str, what: str) -> None:
        from selenium.webdriver.support import expected_conditions as ec

        def attempt(d) -> bool:
            try:
                el = d.find_element(by, what)
                d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
                if not ec.element_to_be_clickable(el)(d):
                    return False
                el.click()
                return True
            except self.retried:
                return False

        self.wait.until(attempt)

    def button(self, label: str) -> None:
        from selenium.webdriver.common.by import By

        self.click(By.XPATH, f"//button[.//p[normalize-space()={label!r}]]")

    def label(self, text: str) -> None:
        """Click a radio option or a checkbox by its label."""
        from selenium.webdriver.common.by import By

        self.click(By.XPATH, f"//label[.//p[normalize-space()={text!r}]]")

    def type_into(self, css: str, text: str, enter: bool = False) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def attempt(d) -> bool:
            try:
                el = d.find_element(By.CSS_SELECTOR, css)
                d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
                el.click()
                el.send_keys(text)
                if enter:
                    time.sleep(0.3)  # the options list filters as one types
                    el.send_keys(Keys.ENTER)
                return True
            except self.retried:
                return False

        self.wait.until(attempt)

    def idle(self) -> None:
        """Wait until the script run ends (Streamlit shows a status widget while it runs)."""
        from selenium.webdriver.common.by import By

        time.sleep(0.5)
        self.wait.until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        )

    def full_screenshot(self, path: Path) -> Path:
        """The whole page in one image: the window grown to the content's height."""
        height = self.d.execute_script(
            "const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
            "return m ? m.scrollHeight + 160 : document.body.scrollHeight;"
        )
        width = self.d.get_window_size()["width"]
        self.d.set_window_size(width, max(int(height), WINDOW[1]))
        time.sleep(1.5)  # charts re-render at the new size
        self.d.save_screenshot(str(path))
        self.d.set_window_size(*WINDOW)
        return path


def walkthrough(driver, stack: Stack, sku: str, shots: Path) -> list[Path]:
    """Sign in, look at the overview, open ``sku``, switch the what-if's coupons off and
    simulate, approve with a reason; returns the screenshots (overview, SKU)."""
    from selenium.webdriver.common.by import By

    shots.mkdir(parents=True, exist_ok=True)
    page = Page(driver)
    driver.get(stack.dashboard_url)
    page.type_into('input[type="password"]', stack.token)
    page.button("Sign in")
    page.see("at-risk SKUs in the plan")
    page.find(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
    page.idle()
    time.sleep(1.5)  # the charts draw after the script run
    overview = shots / SCREENSHOTS[0]
    driver.save_screenshot(str(overview))

    page.label("SKU explorer")
    page.type_into("input[aria-label='SKU contains']", sku + "\n")
    page.idle()
    page.type_into("input[aria-label='open a SKU']", sku, enter=True)
    page.see("Why it is at risk")
    page.idle()
    page.label("coupons on")
    page.button("Simulate")
    page.see("coupons off")
    page.idle()
    page.type_into("textarea[aria-label^='Reason for the review']", REASON)
    page.button("Approve")
    page.see(f"SKU {sku}: approved")
    page.idle()
    return [overview, page.full_screenshot(shots / SCREENSHOTS[1])]


def top_sku(stack: Stack) -> str:
    """The plan's SKU with the largest expected gain over doing nothing (the most to show)."""
    h = {"Authorization": f"Bearer {stack.token}"}
    plan = httpx.get(f"{stack.api_url}/api/v1/plans?limit=1", headers=h).json()["items"][0]
    page = httpx.get(f"{stack.api_url}/api/v1/plans/{plan['id']}/skus",
                     params={"sort": "-gain", "limit": 1}, headers=h).json()  # fmt: skip
    return str(page["items"][0]["sku"])


# ------------------------------------------------------------------------------ entry point
def _quick_run(work: Path) -> Path:
    deadstock = str(BIN / "deadstock")
    world, out = work / "world", work / "run"
    subprocess.run([deadstock, "data", "synth", "--n-skus", "300", "--weeks", "52", "--seed", "3",
                    "--out", str(world)], check=True)  # fmt: skip
    subprocess.run([deadstock, "run", "--quick", "--data", str(world), "--out", str(out)],
                   check=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None, help="a 'deadstock run' output folder")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--sku", default=None, help="the SKU to open (default: the largest gain)")
    args = p.parse_args(argv)
    paths = chromium()
    if paths is None:
        print("needs Debian's chromium and chromium-driver (apt-get install chromium "
              "chromium-driver)", file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory(prefix="deadstock-shots-") as tmp:
        work = Path(tmp)
        run = args.run.resolve() if args.run else _quick_run(work)
        with running_stack(run, work) as stack, browser(paths) as driver:
            sku = args.sku or top_sku(stack)
            shots = walkthrough(driver, stack, sku, work / "shots")
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copyfile(shot, args.out / shot.name)
            print(f"{args.out / shot.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
