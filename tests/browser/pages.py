"""Drives Debian's headless Chromium through the web pages as their users would.

Called by tests/pages.rs with a running `jiazheng serve`:
    pages.py BASE_URL TOKEN BAD_FILE GOOD_FILE GOOD_ROWS ARTIFACTS OFFICE_TOKEN
A citizen drills down from the country to 兴安盟 and 乌兰浩特市 and sorts the areas; a
statistician signs in, drops a bad file (and reads its report), then a good one (and sees the
indicator change); a browser without JavaScript reads the pages and uploads through the plain
form; 兴安盟's office opens its 半年报 and prints it to PDF (A4), which is rendered back to an
image and looked at. Every page is checked with axe-core in the same browser; each page's size and server
time are written to ARTIFACTS/pages.json, screenshots to ARTIFACTS/*.png.
"""

import base64
import json
import os
import re
import sys
import tempfile

import numpy
import pypdfium2

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.print_page_options import PrintOptions
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, TOKEN, BAD, GOOD, GOOD_ROWS, ARTIFACTS, OFFICE_TOKEN = sys.argv[1:8]
GOOD_ROWS = int(GOOD_ROWS)
AXE = open(os.environ["JIAZHENG_AXE"], encoding="utf-8").read()
PAGE_LIMIT = 100 * 1024
os.makedirs(ARTIFACTS, exist_ok=True)
measured = []


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("JIAZHENG_CHROMIUM", "/usr/bin/chromium")
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1280,1000",
        "--user-data-dir=" + tempfile.mkdtemp(prefix="jiazheng-chromium-"),
    ]:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    service = Service(os.environ.get("JIAZHENG_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    return driver


def shot(driver, name):
    """A full-page screenshot: the window is stretched to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 8000))
    driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))
    driver.set_window_size(1280, 1000)


def measure(driver, name):
    """Size and server time of the page now shown, from the browser's navigation timing."""
    nav = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {url: location.pathname + location.search, bytes: n.decodedBodySize,"
        " transferred: n.transferSize,"
        " server: (n.serverTiming.find(t => t.name === 'app') || {}).duration,"
        " ttfb: n.responseStart - n.requestStart};"
    )
    nav["page"] = name
    measured.append(nav)
    assert nav["bytes"] < PAGE_LIMIT, f"{name} is {nav['bytes']} bytes"
    assert nav["server"] is not None, f"{name} has no Server-Timing"
    return nav


def axe(driver, name):
    """WCAG 2.1 A and AA rules of axe-core, run in the page; any violation fails the test."""
    driver.execute_script(AXE)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id,"
        " impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}))"
        ".catch(e => done({passes: 0, violations: [{id: 'axe-error', help: String(e)}]}));"
    )
    violations = result["violations"]
    assert not violations, f"{name}: {json.dumps(violations, ensure_ascii=False, indent=1)}"
    # The rules ran: a page of this kind passes dozens of them.
    assert result["passes"] >= 10, f"{name}: axe passed only {result['passes']} rules"
    measured[-1]["axe_rules_passed"] = result["passes"]


def visit(driver, name, check=True):
    measure(driver, name)
    if check:
        axe(driver, name)
    shot(driver, name)


def h1(driver):
    return driver.find_element(By.TAG_NAME, "h1").text


def value_of(driver, indicator):
    """The figure in the value cell of an indicator in the dashboard's indicator table."""
    return value_cell(driver, indicator).split("\n")[0]


def value_cell(driver, indicator):
    """The whole value cell: the figure and its marks (partly reported, unconfirmed)."""
    return driver.find_element(By.CSS_SELECTOR, f"#value-{indicator} td").text


def click(driver, element):
    """Clicks something that loads a new page; waits until the old one is gone and the new
    one has loaded. Chrome reports a node of an unloaded document as stale or, while the new
    one commits, as "not in the document": both mean gone."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def gone(_):
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 60).until(gone, "the page did not change")
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete",
        "the new page did not load",
    )


def area_row(driver, name):
    """The text of an area's row in the table of areas within the region."""
    for row in driver.find_elements(By.CSS_SELECTOR, "#children ~ div tbody tr"):
        if row.find_element(By.TAG_NAME, "th").text == name:
            return row.text
    raise AssertionError(f"no row for {name}")


def area_cell(driver, name, column):
    """The text of one area's cell under a column heading of the areas table."""
    headings = [
        th.text
        for th in driver.find_elements(By.CSS_SELECTOR, "#children ~ div thead th")
    ]
    at = headings.index(column)
    for row in driver.find_elements(By.CSS_SELECTOR, "#children ~ div tbody tr"):
        cells = row.find_elements(By.CSS_SELECTOR, "th, td")
        if cells[0].text == name:
            return cells[at].text
    raise AssertionError(f"no row for {name}")


def status_row(driver, name):
    """The text of a county's row on the status page."""
    for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr"):
        if row.find_element(By.TAG_NAME, "th").text == name:
            return row.text
    raise AssertionError(f"no row for {name}")


def follow(driver, text):
    """Opens the link with this text in the table of areas within the region."""
    table = driver.find_element(By.CSS_SELECTOR, "#children ~ div table")
    click(driver, table.find_element(By.LINK_TEXT, text))


def wait_for(driver, condition, what):
    WebDriverWait(driver, 60).until(lambda d: condition(d), what)


def drop(driver, path):
    """Drops a file on the drop zone the way a desktop drag does: a DataTransfer with a File."""
    with open(path, "rb") as f:
        data = list(f.read())
    driver.execute_script(
        "const [bytes, name] = arguments;"
        "const file = new File([new Uint8Array(bytes)], name, {type: 'text/csv'});"
        "const transfer = new DataTransfer(); transfer.items.add(file);"
        "const zone = document.getElementById('drop');"
        "for (const type of ['dragenter', 'dragover', 'drop']) {"
        "  zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));"
        "}",
        data,
        os.path.basename(path),
    )


def pick(driver, region):
    """Chooses a region in the page's own period-and-region form and shows it."""
    Select(driver.find_element(By.NAME, "region")).select_by_value(region)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.pick button"))


def choose(driver, dataset, period, region):
    Select(driver.find_element(By.NAME, "dataset")).select_by_value(dataset)
    Select(driver.find_element(By.NAME, "period")).select_by_value(period)
    Select(driver.find_element(By.NAME, "region")).select_by_value(region)


def reached_report(driver):
    """On a report page, loaded (its outcome is the first thing it says). While the script
    navigates, Chrome may answer for a document on its way out: not there yet."""
    try:
        return re.search(r"/submit/[0-9a-f]{8,}", driver.current_url) is not None and bool(
            driver.find_elements(By.ID, "outcome")
        )
    except WebDriverException:
        return False


def keyboard(driver):
    """The first Tab reaches the skip link, shown when focused; Enter jumps to the content."""
    ActionChains(driver).send_keys(Keys.TAB).perform()
    skip = driver.switch_to.active_element
    assert skip.text == "跳到正文" and skip.is_displayed(), skip.text
    assert skip.rect["x"] >= 0, "the skip link stays off screen when focused"
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    assert driver.current_url.endswith("#main"), driver.current_url


def citizen(driver):
    driver.get(BASE + "/")
    keyboard(driver)
    visit(driver, "01-country")
    follow(driver, "内蒙古自治区")
    assert "内蒙古自治区" in h1(driver)
    # 呼和浩特市 has sent nothing: its coverage is not reported, never a zero (its report
    # rate, the last column, is a real 0%).
    hohhot = area_cell(driver, "呼和浩特市", "社区家政服务网点覆盖率")
    assert hohhot == "未报送", hohhot
    # 兴安盟's coverage bar is drawn; the chart names the areas left out.
    assert "未报送（未画出）" in driver.find_element(By.ID, "charts").find_element(By.XPATH, "..").text
    visit(driver, "02-inner-mongolia")
    follow(driver, "兴安盟")
    assert "兴安盟" in h1(driver), h1(driver)
    crumbs = driver.find_element(By.CSS_SELECTOR, "nav.crumbs").text
    assert "内蒙古自治区" in crumbs, crumbs
    # The charts are there, with the line of the target that applies to 兴安盟: not the key
    # cities' 90%, but full coverage by 2025.
    svgs = driver.find_elements(By.CSS_SELECTOR, "#charts ~ .charts svg")
    assert len(svgs) >= 2, len(svgs)
    assert "100.0%" in svgs[0].get_attribute("innerHTML")
    assert "90.0%" not in svgs[0].get_attribute("innerHTML")
    # 突泉县 has not sent its workers yet: the league's worker figures cover 5 of 6 counties.
    credential = driver.find_element(By.ID, "value-credential_rate").text
    assert "部分报送 (5/6)" in credential, credential
    visit(driver, "03-xingan")

    # Sort the areas by coverage: descending first, the header says so.
    table = driver.find_element(By.CSS_SELECTOR, "#children ~ div table")
    click(driver, table.find_element(By.LINK_TEXT, "社区家政服务网点覆盖率"))
    header = driver.find_element(By.CSS_SELECTOR, "th[aria-sort]")
    assert header.get_attribute("aria-sort") == "descending"
    assert "覆盖率" in header.text
    column = [
        th.text
        for th in driver.find_elements(By.CSS_SELECTOR, "#children ~ div thead th")
    ].index(header.text)
    cells = [
        row.find_elements(By.CSS_SELECTOR, "th, td")[column].text
        for row in driver.find_elements(By.CSS_SELECTOR, "#children ~ div tbody tr")
    ]
    numbers = [float(c.rstrip("%")) for c in cells if c.endswith("%")]
    assert len(numbers) >= 3 and numbers == sorted(numbers, reverse=True), cells
    visit(driver, "04-xingan-sorted", check=False)

    follow(driver, "乌兰浩特市")
    assert "乌兰浩特市" in h1(driver)
    before = value_of(driver, "outlets")
    visit(driver, "05-ulanhot")

    # The trend of outlet coverage: a point per published half-year, the line toward the
    # target and its deadline, and the same series to download.
    trend = driver.find_element(By.CSS_SELECTOR, "#value-outlet_coverage a.trend")
    click(driver, trend)
    assert "乌兰浩特市" in h1(driver), h1(driver)
    points = driver.find_elements(By.CSS_SELECTOR, "svg.line circle.point")
    assert len(points) == 2, len(points)
    assert driver.find_elements(By.CSS_SELECTOR, "svg.line polyline.trend")
    assert "目标" in driver.find_element(By.CSS_SELECTOR, "svg.line").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#series tbody tr")) == 2
    visit(driver, "05a-trend")
    driver.back()

    # The English switch keeps the place and the period.
    click(driver, driver.find_element(By.LINK_TEXT, "English"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "Indicators" in driver.page_source and "乌兰浩特市" in h1(driver)
    visit(driver, "06-ulanhot-english")
    click(driver, driver.find_element(By.LINK_TEXT, "中文"))

    # Down to a street: streets have no areas within, and county-only indicators say so.
    follow(driver, "爱国街道")
    assert "爱国街道" in h1(driver), h1(driver)
    assert not driver.find_elements(By.ID, "children")
    assert "只发布到" in driver.find_element(By.ID, "value-key_contact_enterprises").text
    visit(driver, "06a-street")

    # Who has reported: pick Inner Mongolia, then 兴安盟, with the page's own form.
    click(driver, driver.find_element(By.LINK_TEXT, "报送情况"))
    pick(driver, "150000")
    assert "内蒙古自治区" in h1(driver), h1(driver)
    assert "兴安盟" in driver.find_element(By.TAG_NAME, "table").text
    visit(driver, "07a-status-inner-mongolia")
    pick(driver, "152200")
    assert "兴安盟" in h1(driver), h1(driver)
    assert "乌兰浩特市" in driver.find_element(By.TAG_NAME, "table").text
    # 阿尔山市 had no complaints (a nil return); 突泉县 has not sent its workers.
    assert "零报送" in status_row(driver, "阿尔山市"), status_row(driver, "阿尔山市")
    assert "未报送" in status_row(driver, "突泉县"), status_row(driver, "突泉县")
    visit(driver, "07-status-xingan")
    return before


def data_reader(driver):
    """A reader finds 兴安盟 by its Pinyin, then browses the outlets: a filter from the form, a
    facet clicked, the next page."""
    driver.get(BASE + "/")
    search = driver.find_element(By.CSS_SELECTOR, "form[role=search] input[name=q]")
    search.send_keys("xingan")
    click(driver, driver.find_element(By.CSS_SELECTOR, "form[role=search] button"))
    found = driver.find_element(By.ID, "regions").text
    assert found.splitlines()[1].startswith("兴安盟"), found
    visit(driver, "16-region-search")

    click(driver, driver.find_element(By.LINK_TEXT, "开放数据"))
    click(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "社区家政服务网点"))
    assert h1(driver).startswith("社区家政服务网点"), h1(driver)
    total = driver.find_element(By.ID, "matched").text
    form = driver.find_element(By.ID, "filters")
    form.find_element(By.NAME, "region").send_keys("152200")
    Select(form.find_element(By.NAME, "mode")).select_by_visible_text("嵌入")
    click(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    embedded = driver.find_element(By.ID, "matched").text
    assert embedded != total, (total, embedded)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#active a.chip")) == 2, "region and mode"
    visit(driver, "17-dataset-filtered")

    # A facet: the first county listed, with its count; the page then shows that many, the
    # county taking the league's place as the region.
    county = driver.find_element(By.XPATH, "//section[@class='facets']/h3[text()='旗县（市、区）']/following-sibling::ul[1]/li[1]")
    count = county.find_element(By.CSS_SELECTOR, "span.muted").text
    name = county.find_element(By.TAG_NAME, "a").text
    click(driver, county.find_element(By.TAG_NAME, "a"))
    matched = driver.find_element(By.ID, "matched").text
    assert f"共 {count} 条记录" in matched, (count, matched)
    chips = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#active a.chip")]
    assert len(chips) == 2 and chips[0].startswith(name), chips
    rows = driver.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    assert 0 < len(rows) <= 50 and all("嵌入" in r.text for r in rows)
    visit(driver, "17a-dataset-faceted")


def statistician(driver, before):
    driver.get(BASE + "/submit")
    visit(driver, "08-sign-in")
    driver.find_element(By.ID, "key").send_keys("jz_not_a_key")
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.stack button"))
    assert "密钥无效" in driver.find_element(By.ID, "error").text
    driver.find_element(By.ID, "key").send_keys(TOKEN)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.stack button"))
    assert "乌兰浩特市" in h1(driver), h1(driver)
    visit(driver, "09-submitter")

    # A bad file, dropped on the form: the report lists the offending cell.
    choose(driver, "outlets", "2023H2", "152201")
    drop(driver, BAD)
    assert os.path.basename(BAD) in driver.find_element(By.ID, "upload-status").text
    driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_for(driver, reached_report, "the bad file's report")
    assert "未通过" in driver.find_element(By.ID, "outcome").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#problems tbody tr")
    assert rows, "no problems listed"
    first = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    assert first[0] == "3" and first[1] == "进驻方式" and first[2] == "加盟", first
    visit(driver, "10-report-rejected")

    # Nothing changed on the dashboard.
    driver.get(BASE + "/?period=2023H2&region=152201")
    assert value_of(driver, "outlets") == before

    # A good file: accepted, current, and the dashboard's figure moves.
    driver.get(BASE + "/submit")
    choose(driver, "outlets", "2023H2", "152201")
    drop(driver, GOOD)
    driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_for(driver, reached_report, "the good file's report")
    outcome = driver.find_element(By.ID, "outcome").text
    assert "已接收" in outcome and "当前数据" in outcome, outcome
    # One outlet's opening date moved since 2023H1: accepted, with a finding to confirm.
    checks = driver.find_element(By.ID, "checks").text
    assert "待核实 1" in checks, checks
    report = driver.current_url
    visit(driver, "11-report-accepted")
    click(driver, driver.find_element(By.LINK_TEXT, "查看本地区指标"))
    after = value_of(driver, "outlets")
    assert after == f"{GOOD_ROWS:,}" and after != before, (before, after)
    assert "待核实" in value_cell(driver, "outlets"), value_cell(driver, "outlets")
    visit(driver, "12-ulanhot-after")
    driver.get(BASE + "/status?period=2023H2&region=152200")
    assert "待核实" in status_row(driver, "乌兰浩特市"), status_row(driver, "乌兰浩特市")
    visit(driver, "12a-status-unconfirmed")

    # Confirmed on the report page (已核实, with a comment): the marks go.
    driver.get(report)
    form = driver.find_element(By.CSS_SELECTOR, "#problems form.confirm")
    form.find_element(By.NAME, "comment").send_keys("门店重新装修后开业，日期以新证照为准")
    click(driver, form.find_element(By.TAG_NAME, "button"))
    wait_for(driver, reached_report, "the report after confirming")
    problems = driver.find_element(By.ID, "problems").text
    assert "已核实" in problems and "新证照" in problems, problems
    assert not driver.find_elements(By.ID, "checks")
    visit(driver, "12b-report-confirmed")
    driver.get(BASE + "/?period=2023H2&region=152201")
    assert value_of(driver, "outlets") == after
    assert "待核实" not in value_cell(driver, "outlets"), value_cell(driver, "outlets")
    driver.get(BASE + "/status?period=2023H2&region=152200")
    assert "待核实" not in status_row(driver, "乌兰浩特市"), status_row(driver, "乌兰浩特市")

    driver.get(BASE + "/submit")
    history = driver.find_element(By.CSS_SELECTOR, "#history ~ div table").text
    assert "当前" in history and "outlets-mode.csv" in history, history
    visit(driver, "13-submitter-history")
    return after


def office(driver):
    """兴安盟's statistician signs in, opens the 半年报 and prints it: an A4 PDF whose first page,
    rendered back to an image, shows the report's heading and table, not the site's navigation."""
    driver.get(BASE + "/submit")
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.pick button.plain"))
    driver.find_element(By.ID, "key").send_keys(OFFICE_TOKEN)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.stack button"))
    click(driver, driver.find_element(By.ID, "half-year"))
    heading = h1(driver)
    assert heading.startswith("兴安盟家政进社区工作半年报"), heading
    counties = driver.find_element(By.CSS_SELECTOR, "#areas ~ div.scroll table").text
    for county in ["乌兰浩特市", "阿尔山市", "科尔沁右翼前旗", "突泉县"]:
        assert county in counties, counties
    assert driver.find_elements(By.CSS_SELECTOR, "figure svg"), "no chart"
    visit(driver, "15-half-year")

    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7
    pdf = base64.b64decode(driver.print_page(options))
    with open(os.path.join(ARTIFACTS, "15a-half-year.pdf"), "wb") as f:
        f.write(pdf)
    document = pypdfium2.PdfDocument(pdf)
    first = document[0]
    width, height = first.get_size()
    assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, ("not A4", width, height)
    text = first.get_textpage().get_text_range()
    assert "半年报" in text and "主要指标完成情况" in text, text[:300]
    assert "跳到正文" not in text and "下载 Excel" not in text, "screen-only parts were printed"
    image = first.render(scale=1.5).to_pil()
    image.save(os.path.join(ARTIFACTS, "15b-half-year-pdf.png"))
    # Looked at: ink on the page, in the top and in the body, not a blank or a one-line sheet.
    pixels = numpy.asarray(image.convert("L"))
    inked = pixels < 128
    assert inked.mean() > 0.01, f"the printed page is nearly blank ({inked.mean():.4f})"
    rows = inked.any(axis=1)
    assert rows[: len(rows) // 4].any() and rows[len(rows) // 2 :].any(), "ink only in one part"
    print(f"half-year PDF: {len(document)} page(s), A4, {inked.mean():.1%} inked")


def without_javascript(driver, after):
    """Reading and uploading work with script off: the form posts, the server redirects."""
    driver.get(BASE + "/?period=2023H2&region=152201")
    assert value_of(driver, "outlets") == after
    driver.get(BASE + "/submit")
    driver.find_element(By.ID, "key").send_keys(TOKEN)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form.stack button"))
    choose(driver, "outlets", "2023H2", "152201")
    driver.find_element(By.ID, "file").send_keys(BAD)
    click(driver, driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]"))
    wait_for(driver, reached_report, "the report without script")
    assert "完全相同" in driver.page_source, "the same bad file again is a duplicate"
    assert driver.find_elements(By.CSS_SELECTOR, "#problems tbody tr")
    shot(driver, "14-no-script-report")


def main():
    driver = browser()
    try:
        before = citizen(driver)
        data_reader(driver)
        after = statistician(driver, before)
        office(driver)
    finally:
        driver.quit()
    plain = browser(javascript=False)
    try:
        without_javascript(plain, after)
    finally:
        plain.quit()
    with open(os.path.join(ARTIFACTS, "pages.json"), "w", encoding="utf-8") as f:
        json.dump(measured, f, ensure_ascii=False, indent=1)
    lines = [
        f"{m['page']:<24} {m['bytes']:>7} B  {m['transferred']:>6} B on the wire  "
        f"server {m['server']:>6.1f} ms  axe rules passed {m.get('axe_rules_passed', '-'):>3}  {m['url']}"
        for m in measured
    ]
    with open(os.path.join(ARTIFACTS, "pages.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("browser test passed")


if __name__ == "__main__":
    main()
