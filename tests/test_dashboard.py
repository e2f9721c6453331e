#!/usr/bin/env python3
"""test_dashboard.py - ssnad's live A/B page (GET /) in a real headless browser.

Debian's chromium, driven through chromium-driver by python3-selenium, loads the page from
tests/dashboard_fixture (daemon/http.c + daemon/abtest.c over a scripted stream of scored lists,
past the history's bound) and checks, against the same server's /abtest JSON:
  - one table row per arm with its name, lists scored, hit rate / NDCG with intervals, and the
    difference to the control with its p-value, as the JSON says;
  - a markup-like arm name shows as text (no element injected);
  - both charts draw one line per arm with one vertex per non-null history point, inside the plot;
  - the page follows the stream: more lists scored -> the table and curves change within seconds;
  - no console error (a Content-Security-Policy violation would be one);
  - a server that goes away is reported on the page, not left showing stale figures silently.
Fails (exit 1) when selenium, chromium or chromedriver is missing: ops/setup.sh installs them.

    python3 tests/test_dashboard.py build/tests/dashboard_fixture
"""
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}", file=sys.stderr)
    return cond


def wait_for(fn, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    check(False, f"{what} (waited {timeout} s)")
    return None


def fmt4(x):
    return "-" if x is None else f"{x:.4f}"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError as e:
        print(f"test_dashboard: python3-selenium is missing ({e}); ops/setup.sh installs it",
              file=sys.stderr)
        return 1
    chromium = shutil.which("chromium")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        print("test_dashboard: chromium and chromium-driver are needed (ops/setup.sh installs "
              f"them); found chromium={chromium} chromedriver={driver_bin}", file=sys.stderr)
        return 1

    fixture = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    line = fixture.stdout.readline()
    if not line.startswith("port "):
        print(f"test_dashboard: the fixture said {line!r}", file=sys.stderr)
        fixture.kill()
        return 1
    base = f"http://127.0.0.1:{int(line.split()[1])}/"
    profile = tempfile.mkdtemp(prefix="ssna-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-first-run", f"--user-data-dir={profile}", "--window-size=1200,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = None
    try:
        browser = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
        print(f"test_dashboard: {browser.capabilities.get('browserVersion')} on {base}")
        browser.get(base)
        status = browser.find_element(By.ID, "status")
        scored = lambda: status.get_attribute("data-scored")  # noqa: E731
        check(wait_for(scored, 20, "the page shows /abtest") == "20000",
              f"status says {scored()} lists scored, want 20000")
        doc = json.load(urllib.request.urlopen(base + "abtest"))
        check_page(browser, doc)

        # the page follows the stream: 3,000 more lists and it shows them within its 2 s refresh
        fixture.stdin.write("more 3000\n")
        fixture.stdin.flush()
        check(fixture.stdout.readline().strip() == "scored 23000", "fixture scored 23000")
        check(wait_for(lambda: scored() == "23000", 10, "the page refreshes") is not None,
              f"status still at {scored()}")
        doc = json.load(urllib.request.urlopen(base + "abtest"))
        check_page(browser, doc)

        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        check(not errors, f"no console errors: {errors}")

        # the daemon goes away: the page says so
        fixture.stdin.close()
        check(fixture.wait(timeout=10) == 0, "fixture exits 0")
        wait_for(lambda: status.get_attribute("class") == "error", 10, "the page reports the loss")
        check("cannot read /abtest" in status.text, f"status reads {status.text!r}")
    finally:
        if browser:
            browser.quit()
        if fixture.poll() is None:
            fixture.kill()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"test_dashboard: {'ok' if not failures else f'{failures} failed'}")
    return 1 if failures else 0


# The page redraws every 2 s, replacing its rows and lines: element handles taken one call apart
# can go stale in between. One script call reads everything at once (the page's own script cannot
# run during it), so the checks see one consistent drawing.
SNAPSHOT_JS = """
const cells = tr => Object.fromEntries([...tr.querySelectorAll("td")].map(td => [td.className,
                                                                          td.textContent.trim()]));
const chart = id => {
  const svg = document.getElementById(id);
  return {width: svg.getAttribute("width"), height: svg.getAttribute("height"),
          lines: [...svg.querySelectorAll("polyline")].map(l => ({
            points: l.getAttribute("points"), count: l.getAttribute("data-count")}))};
};
return {rows: [...document.querySelectorAll("#arms tbody tr")].map(cells),
        injected: document.getElementById("injected") !== null,
        charts: {"chart-window": chart("chart-window"),
                 "chart-cumulative": chart("chart-cumulative")}};
"""


def check_page(browser, doc):
    arms = doc["arms"]
    page = browser.execute_script(SNAPSHOT_JS)
    rows = page["rows"]
    check(len(rows) == len(arms) == 3, f"{len(rows)} table rows for {len(arms)} arms")
    for i, (row, arm) in enumerate(zip(rows, arms)):
        cell = lambda cls: row.get(cls)  # noqa: E731
        want_name = arm["variant"] + (" (control)" if i == 0 else "")
        check(cell("name") == want_name, f"row {i} name {cell('name')!r}, want {want_name!r}")
        check(cell("scored") == str(arm["cumulative"]["scored"]), f"row {i} scored")
        for cls, scope, key in (("hit", "cumulative", "hit_rate"), ("ndcg", "cumulative", "ndcg"),
                                ("whit", "window", "hit_rate"), ("wndcg", "window", "ndcg")):
            iv = arm[scope][key]
            want = f"{fmt4(iv['estimate'])} [{fmt4(iv['low'])}, {fmt4(iv['high'])}]"
            check(cell(cls) == want, f"row {i} {cls}: {cell(cls)!r}, want {want!r}")
        deff = arm["cumulative"]["design_effect"]["hit_rate"]
        want_deff = "-" if deff is None else f"{deff:.2f}"
        check(cell("deff") == want_deff, f"row {i} design effect {cell('deff')!r}, want {want_deff!r}")
        if i:
            vs = arm["vs_control"]["cumulative"]["hit_rate"]
            check((cell("diff") or "").startswith(("+" if vs["difference"] >= 0 else "") +
                                                  fmt4(vs["difference"])),
                  f"row {i} diff {cell('diff')}")
            p = vs["p_value"]
            mantissa, exponent = f"{p:.1e}".split("e")  # as JavaScript's toExponential(1)
            want_p = f"{mantissa}e{int(exponent):+d}" if p < 1e-4 else f"{p:.4f}"
            check(cell("p") == want_p, f"row {i} p {cell('p')!r}, want {want_p!r}")
    check(not page["injected"], "an arm's name is shown as text")
    points = doc["history"]["points"]
    check(len(points) > 100, f"{len(points)} history points")
    for chart, key in (("chart-window", "hit_rate_window"), ("chart-cumulative", "hit_rate")):
        svg = page["charts"][chart]
        width, height = float(svg["width"]), float(svg["height"])
        lines = svg["lines"]
        check(len(lines) == len(arms), f"{chart}: {len(lines)} lines for {len(arms)} arms")
        for i, line in enumerate(lines):
            want = sum(1 for p in points if p[key][i] is not None)
            xy = [tuple(map(float, v.split(","))) for v in line["points"].split()]
            check(len(xy) == want and line["count"] == str(want),
                  f"{chart} arm {i}: {len(xy)} vertices, want {want}")
            check(all(0 <= x <= width and 0 <= y <= height for x, y in xy),
                  f"{chart} arm {i}: a vertex outside the plot")
            check(all(b[0] > a[0] for a, b in zip(xy, xy[1:])), f"{chart} arm {i}: x goes back")
    # the late arm scored nothing in the first 5,000 lists: its line starts later than the others
    late = sum(1 for p in points if p["hit_rate"][2] is None)
    check(late > 0, "the late arm has null points before its first list")


if __name__ == "__main__":
    sys.exit(main())
