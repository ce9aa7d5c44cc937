"""Headless Chromium driven over the DevTools protocol, standard library only.

Chromium is started with ``--remote-debugging-pipe``: it reads commands from fd 3 and
writes replies and events to fd 4, each a JSON message ended by a NUL byte. Enough of the
protocol for the page tests and the README screenshot: open a page, evaluate JavaScript,
click like a mouse, take a screenshot, and list what went wrong on a page (``problems``).

    python -m tests.browser URL OUT.png [WIDTH HEIGHT]   # a screenshot
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(Exception):
    pass


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, width: int = 1000, height: int = 1400, mobile: bool = False):
        binary = chromium()
        if binary is None:
            raise BrowserError("chromium is not installed (apt-get install -y chromium)")
        self.profile = tempfile.mkdtemp(prefix="mq-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def plumbing() -> None:  # in the child, before exec
            # Copy both above 10 first: a pipe end may itself be fd 3 or 4, and dup2 onto
            # the same number would keep its close-on-exec flag.
            reading = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)  # inheritable across exec
            os.dup2(writing, 4)
            os.setsid()

        # Chromium writes its log through its own copies of the file (stdout and stderr):
        # this process needs its handle only to start it.
        with open(os.path.join(self.profile, "chromium.log"), "wb") as log:
            self.process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}",
                 f"--window-size={width},{height}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                close_fds=False, preexec_fn=plumbing)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Network.enable")
        self.page("Log.enable")
        self.page("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    # -- protocol ---------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message and message["id"] in self._replies:
                    self._replies[message["id"]].put(message)
                else:
                    self.events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 15.0) -> dict:
        message_id = next(self._ids)
        reply: queue.Queue = queue.Queue()
        self._replies[message_id] = reply
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        with self._lock:
            os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        try:
            answer = reply.get(timeout=timeout)
        except queue.Empty:
            raise BrowserError(f"{method}: no answer within {timeout:.0f}s") from None
        finally:
            del self._replies[message_id]
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def page(self, method: str, params: dict | None = None, timeout: float = 15.0) -> dict:
        return self.send(method, params, self.session, timeout)

    # -- what tests use ---------------------------------------------------------------

    def open(self, url: str) -> None:
        result = self.page("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    def js(self, expression: str):
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression}: {details.get('text')} "
                               f"{details.get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 5.0, what: str = "") -> float:
        """Poll a JavaScript condition until it is truthy; returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                if self.js(f"Boolean({expression})"):
                    return time.monotonic() - started
            except BrowserError as exc:  # the page navigated meanwhile (a reload): ask again
                if "navigated" not in str(exc) and "context" not in str(exc):
                    raise
            if time.monotonic() - started > timeout:
                raise BrowserError(f"timed out after {timeout:.0f}s waiting for "
                                   f"{what or expression}{self._state()}")
            time.sleep(0.02)

    def _state(self) -> str:
        """Where the page is and what it shows as an error, and what went wrong on it, for
        a timeout's message (so that a failure in CI says why)."""
        try:
            shown = self.js("[location.href, document.getElementById('error')?.hidden === false"
                            " ? document.getElementById('error-text')?.textContent : null]")
            return f" (page at {shown[0]}, showing error: {shown[1]!r}; " \
                   f"problems: {self.problems()})"
        except Exception as exc:  # a diagnostic: never hide the timeout itself
            return f" (the page could not be asked: {exc})"

    def problems(self) -> list[str]:
        """What went wrong on the page since the last call: requests that failed (no
        answer, or a status of 400 and above), console errors, uncaught exceptions. A
        request the page itself cancelled (a stream left behind) is not a problem."""
        found = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return found
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.responseReceived" and params["response"]["status"] >= 400:
                found.append(f"{params['response']['status']} {params['response']['url']}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"request failed: {params.get('errorText')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"console: {params['entry'].get('text')} "
                             f"{params['entry'].get('url', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(f"console.error: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) in the middle of the element."""
        box = self.js(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        if box is None:
            raise BrowserError(f"nothing matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.page("Input.insertText", {"text": text})

    def screenshot(self, path: str) -> None:
        data = self.page("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": False})
        with open(path, "wb") as out:
            out.write(base64.b64decode(data["data"]))

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=3)
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str]) -> int:
    url, out = argv[1], argv[2]
    width, height = (int(argv[3]), int(argv[4])) if len(argv) > 4 else (1000, 1400)
    with Browser(width, height) as browser:
        browser.open(url)
        time.sleep(1.0)
        browser.screenshot(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
