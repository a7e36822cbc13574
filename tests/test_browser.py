"""The drawing page in a real headless Chromium, driven over the Chrome DevTools Protocol
(``websocket-client``; no driver download): mouse strokes of a real MNIST seven, touch
strokes on a phone-sized screen with live prediction, the empty-canvas message, Clear.

Set TINYGRAD_MNIST_SCREENSHOT=docs/serve.png to save the page after the seven's prediction.
"""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest

from test_serve import mnist_test_set, running, stub_proba, tiny_mnist_predictor

websocket = pytest.importorskip("websocket", reason="the browser tests need websocket-client "
                                "(pip install websocket-client)")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                "(apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--disable-crash-reporter", "--disable-breakpad",
         "--hide-scrollbars", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1"]
DESKTOP = (760, 560)


class Browser:
    """Headless Chromium and one page, spoken to over the DevTools websocket."""

    def __init__(self, binary: str, window: Tuple[int, int]) -> None:
        self.profile = tempfile.mkdtemp(prefix="tinygrad-mnist-chromium-")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={window[0]},{window[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: its helpers end with it
        self.ids = itertools.count(1)
        try:
            port = self._devtools_port()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # no proxies
            try:
                conn.request("GET", "/json/list")
                targets = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            page = next(t for t in targets if t["type"] == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=20,
                                                  suppress_origin=True)
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.desktop()
        except BaseException:
            self.close()
            raise

    def desktop(self) -> None:
        """A DESKTOP-sized viewport with a mouse (the window also holds hidden chrome)."""
        self.send("Emulation.setTouchEmulationEnabled", enabled=False)
        self.send("Emulation.setDeviceMetricsOverride", width=DESKTOP[0], height=DESKTOP[1],
                  deviceScaleFactor=1, mobile=False)

    def phone(self) -> None:
        """A 390x844 touch screen at twice the pixel density."""
        self.send("Emulation.setDeviceMetricsOverride", width=390, height=844,
                  deviceScaleFactor=2, mobile=True)
        self.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=1)

    def _devtools_port(self) -> int:
        port_file = Path(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self.process.returncode}")
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            time.sleep(0.05)
        raise TimeoutError("Chromium did not open its DevTools port within 20 s")

    def send(self, method: str, **params: Any) -> Dict[str, Any]:
        """One DevTools command; events arriving meanwhile are dropped."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s for {expression}; page state: {self.state()}")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && "
                      "document.querySelectorAll('#bars li').length === 10")

    def state(self) -> Dict[str, Any]:
        return self.js("({state: document.body.dataset.state, "
                       "digit: document.getElementById('digit').textContent, "
                       "message: document.getElementById('message').textContent})")

    def canvas_box(self) -> Tuple[float, float, float]:
        """Left, top and side of the drawing canvas in CSS pixels."""
        r = self.js("(() => { const r = document.getElementById('pad')"
                    ".getBoundingClientRect(); return [r.left, r.top, r.width]; })()")
        return r[0], r[1], r[2]

    def mouse_stroke(self, points: List[Tuple[float, float]]) -> None:
        mouse = dict(button="left", clickCount=1)
        (x, y), *rest = points
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.send("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, buttons=1, **mouse)
        for x, y in rest:
            self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, buttons=1,
                      button="left")
        self.send("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, **mouse)

    def touch_stroke(self, points: List[Tuple[float, float]]) -> None:
        (x, y), *rest = points
        self.send("Input.dispatchTouchEvent", type="touchStart", touchPoints=[dict(x=x, y=y)])
        for x, y in rest:
            self.send("Input.dispatchTouchEvent", type="touchMove", touchPoints=[dict(x=x, y=y)])
        self.send("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, scrolled into view."""
        x, y = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                       "e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect();"
                       " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        self.mouse_stroke([(x, y)])

    def screenshot(self, path: Path) -> None:
        """The page down to the end of its content, as a PNG file."""
        bottom = self.js("Math.ceil(document.querySelector('main').getBoundingClientRect()"
                         ".bottom)")
        width = self.js("document.documentElement.clientWidth")
        shot = self.send("Page.captureScreenshot", format="png",
                         clip=dict(x=0, y=0, width=width, height=bottom, scale=1))
        png = base64.b64decode(shot["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        group = self.process.pid  # the session leader's pid is its group's id
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:  # helper processes still shutting down
                os.killpg(group, 0)
                time.sleep(0.05)
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser(CHROMIUM, DESKTOP)  # type: ignore[arg-type]
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def model_app() -> Iterator[running]:
    tiny_mnist_predictor()  # train (or skip) before the server starts
    with running(tiny_mnist_predictor()) as app:
        yield app


@pytest.fixture
def stub_app() -> Iterator[running]:
    with running(stub_proba) as app:
        yield app


def image_strokes(image: np.ndarray, box: Tuple[float, float, float],
                  threshold: int = 128) -> List[List[Tuple[float, float]]]:
    """Trace a 28x28 digit as pen strokes: one horizontal stroke per run of ink pixels in
    each row, scaled to the canvas (the page's 22/280-wide pen fills the gaps)."""
    left, top, side = box
    cell = side / 28
    strokes = []
    for row in range(28):
        ink = np.flatnonzero(image[row] >= threshold)
        if not ink.size:
            continue
        runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)
        y = top + (row + 0.5) * cell
        for run in runs:
            x0, x1 = left + (run[0] + 0.5) * cell, left + (run[-1] + 0.5) * cell
            strokes.append([(x0 + (x1 - x0) * t / 4, y) for t in range(5)])
    return strokes


def first_confident_seven(predict: Any) -> np.ndarray:
    """The first test-set seven that the tiny model reads as a seven with >= 90%."""
    from tinygrad_mnist.data import mnist_style
    images, labels = mnist_test_set()
    for i in np.flatnonzero(labels == 7)[:50]:
        if predict(mnist_style(images[i])[None])[0, 7] >= 0.9:
            return images[i]
    raise AssertionError("the tiny model is not sure of any of the first 50 sevens")


# ---------------------------------------------------------------- tests
def test_mouse_drawn_seven_is_recognised(browser: Browser, model_app: running) -> None:
    seven = first_confident_seven(tiny_mnist_predictor())
    browser.open(model_app.url)
    browser.js("document.getElementById('live').checked = false")
    for stroke in image_strokes(seven, browser.canvas_box()):
        browser.mouse_stroke(stroke)
    ink = browser.js("(() => { const c = document.getElementById('pad'); const d = c"
                     ".getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
                     " for (let i = 0; i < d.length; i += 4) n += d[i] < 128; return n; })()")
    assert ink > 2000, "the strokes did not reach the canvas"
    assert browser.state()["state"] == "idle"  # live prediction is off
    browser.click("#predict")
    state = browser.wait_for("document.body.dataset.state === 'done' && "
                             "document.getElementById('digit').textContent")
    assert state == "7", browser.state()
    assert browser.js("document.querySelector('#bars li.top .k').textContent") == "7"
    seen = browser.js("(() => { const d = document.getElementById('preview').getContext('2d')"
                      ".getImageData(0, 0, 28, 28).data; let s = 0; for (let i = 0; "
                      "i < d.length; i += 4) s += d[i]; return s; })()")
    assert seen > 255 * 50, "the preview shows no digit"
    if os.environ.get("TINYGRAD_MNIST_SCREENSHOT"):
        browser.js("document.getElementById('live').checked = true")  # as the page starts
        time.sleep(0.3)                                                # the bars' transition
        browser.screenshot(Path(os.environ["TINYGRAD_MNIST_SCREENSHOT"]))

    browser.click("#clear")
    assert browser.state() == {"state": "idle", "digit": "–", "message": ""}


def test_empty_canvas_shows_a_message(browser: Browser, stub_app: running) -> None:
    browser.open(stub_app.url)
    browser.click("#predict")
    browser.wait_for("document.body.dataset.state === 'error'")
    assert browser.state() == {"state": "error", "digit": "–", "message": "Draw a digit first."}
    assert browser.js("getComputedStyle(document.getElementById('message')).color") \
        == "rgb(180, 35, 24)"   # shown as an error


def test_touch_strokes_on_a_phone_predict_live(browser: Browser, model_app: running) -> None:
    """On a 390x844 touch screen the page fits without sideways scrolling, and a finger
    drawing a one gets a prediction without pressing anything."""
    browser.phone()
    try:
        browser.open(model_app.url)
        assert browser.js("document.documentElement.scrollWidth") <= 390
        left, top, side = browser.canvas_box()
        assert left >= 0 and left + side <= 390 and side >= 250
        x = left + side / 2
        browser.touch_stroke([(x + 0.1 * side * (1 - t / 8), top + side * (0.15 + 0.7 * t / 8))
                              for t in range(9)])
        digit = browser.wait_for("document.body.dataset.state === 'done' && "
                                 "document.getElementById('digit').textContent")
        assert digit == "1", browser.state()
    finally:
        browser.desktop()


def test_server_errors_reach_the_page(browser: Browser) -> None:
    with running(lambda images: np.ones((1, 3))) as app:
        browser.open(app.url)
        left, top, side = browser.canvas_box()
        browser.mouse_stroke([(left + side / 2, top + side * f) for f in (0.2, 0.5, 0.8)])
        browser.click("#predict")
        browser.wait_for("document.body.dataset.state === 'error'")
    assert browser.state()["message"] == "the model failed to make a prediction"
