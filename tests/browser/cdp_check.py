#!/usr/bin/env python3
"""Load a local HTML file in headless Chromium via the DevTools protocol over
--remote-debugging-pipe (Python stdlib only), and report console errors,
uncaught exceptions, failed loads and every non-file:// request.

For the HTML report's browser test (issue 14, to come): Debian's `chromium`
(apt-get install -y chromium). Checked by hand on 2026-12-06 with chromium 156:
a page with console.error('x') and <img src="http://example.com/a.png"> reports
both and exits 1; a clean page with inline SVG and local images exits 0.

usage: cdp_check.py FILE.html [--screenshot out.png] [--width 1280 --height 900]
                    [--count CSS_SELECTOR ...]
exit 0 = clean, 1 = problems found, 2 = harness failure. The JSON printed holds,
for each --count selector, how many elements of the rendered page match it, and
that have a drawn size on the page (a chart that rendered).
"""
import argparse, base64, json, os, pathlib, shutil, subprocess, sys, tempfile, time

def find_chromium():
    if os.environ.get("DLBENCH_CHROMIUM"):
        return os.environ["DLBENCH_CHROMIUM"]
    for n in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(n)
        if p:
            return p
    print("chromium not found (apt-get install -y chromium)", file=sys.stderr); sys.exit(2)

class Pipe:
    def __init__(self, args):
        # Chromium reads commands from fd 3 and writes replies/events to fd 4.
        r_in, w_in = os.pipe()    # we write -> chrome reads (fd 3)
        r_out, w_out = os.pipe()  # chrome writes (fd 4) -> we read
        def setup():
            # dup to high fds first: os.pipe() may itself return 3/4, and dup2(fd, fd)
            # would keep O_CLOEXEC set.
            a, b = os.dup(r_in), os.dup(w_out)
            os.dup2(a, 3); os.dup2(b, 4)   # os.dup2 makes 3/4 inheritable
        self.proc = subprocess.Popen(args, preexec_fn=setup, close_fds=False,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.environ.get("CDP_STDERR", os.devnull), "wb"))
        os.close(r_in); os.close(w_out)
        self.w, self.r = w_in, r_out
        self.buf = b""; self.next_id = 0; self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline):
        import select
        while b"\0" not in self.buf:
            t = deadline - time.monotonic()
            if t <= 0:
                return None
            ready, _, _ = select.select([self.r], [], [], t)
            if not ready:
                return None
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None, timeout=30):
        i = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_one(deadline)
            if m is None:
                raise TimeoutError(method)
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def pump(self, until, timeout):
        """Collect events until `until(event)` is true or timeout. Returns True if matched."""
        deadline = time.monotonic() + timeout
        for e in self.events:
            if until(e):
                return True
        while True:
            m = self._read_one(deadline)
            if m is None:
                return False
            self.events.append(m)
            if until(m):
                return True

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("html")
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--settle", type=float, default=0.5, help="seconds to keep listening after load")
    ap.add_argument("--count", action="append", default=[], help="CSS selector to count")
    a = ap.parse_args()
    url = pathlib.Path(a.html).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="cdp-profile-")
    args = [find_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
            f"--user-data-dir={profile}", "--remote-debugging-pipe",
            f"--window-size={a.width},{a.height}", "about:blank"]
    p = Pipe(args)
    counts = {}
    try:
        tid = p.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = p.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for d in ("Page", "Runtime", "Log", "Network"):
            p.call(f"{d}.enable", session=sid)
        p.call("Emulation.setDeviceMetricsOverride",
               {"width": a.width, "height": a.height, "deviceScaleFactor": 1, "mobile": False}, session=sid)
        p.call("Page.navigate", {"url": url}, session=sid)
        loaded = p.pump(lambda e: e.get("method") == "Page.loadEventFired" and e.get("sessionId") == sid, 30)
        p.pump(lambda e: False, a.settle)  # late console messages / requests
        for selector in a.count:
            # Elements that match and take up space on the page (a chart that was drawn).
            expr = ("Array.from(document.querySelectorAll(%s)).filter("
                    "e => e.getBoundingClientRect().width > 0 && "
                    "e.getBoundingClientRect().height > 0).length") % json.dumps(selector)
            result = p.call("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                            session=sid)
            counts[selector] = result.get("result", {}).get("value")
        if a.screenshot:
            data = p.call("Page.captureScreenshot", {"format": "png"}, session=sid)["data"]
            pathlib.Path(a.screenshot).write_bytes(base64.b64decode(data))
        try:
            p.call("Browser.close", timeout=5)
        except Exception:
            pass
    finally:
        try:
            p.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.proc.kill()
        shutil.rmtree(profile, ignore_errors=True)

    problems, requests = [], []
    for e in p.events:
        m, prm = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and prm["type"] in ("error", "warning", "assert"):
            text = " ".join(str(x.get("value", x.get("description", ""))) for x in prm.get("args", []))
            problems.append(f"console.{prm['type']}: {text}")
        elif m == "Runtime.exceptionThrown":
            d = prm["exceptionDetails"]
            problems.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
        elif m == "Log.entryAdded" and prm["entry"]["level"] in ("error", "warning"):
            en = prm["entry"]
            problems.append(f"log.{en['level']} [{en['source']}]: {en['text']} {en.get('url', '')}".rstrip())
        elif m == "Network.requestWillBeSent":
            requests.append(prm["request"]["url"])
        elif m == "Network.loadingFailed":
            problems.append(f"load failed: {prm.get('errorText')} ({prm.get('requestId')})")
    external = [u for u in requests if not u.startswith(("file://", "data:", "about:"))]
    problems += [f"external request: {u}" for u in external]
    print(json.dumps({"url": url, "loaded": loaded, "requests": requests, "problems": problems,
                      "counts": counts}, indent=1))
    sys.exit(2 if not loaded else (1 if problems else 0))

if __name__ == "__main__":
    main()
