// Drives the console in headless Chromium (Debian `chromium`) with playwright-core: the page
// is in Chinese; a wrong password is refused; log in as a person (the click starts the sound), wait for the demo's red slope order and
// its alarm tone, acknowledge it, see the state change and the timeline; then an action made
// elsewhere (through the API) reaches the page pushed (SSE); English on a click; screenshot.
// the page shows who is logged in; log out ends the session.
//   node drive.cjs URL NAME PASSWORD SCREENSHOT
const { chromium } = require("playwright-core");

(async () => {
  const [url, name, password, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    // The browser in another zone than the daemon: times must still read as Shanghai's.
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, timezoneId: "America/New_York" });
    // Dispatch asks whom to send to: nobody in particular here.
    page.on("dialog", (d) => {
      if (d.message().startsWith("派遣给")) return d.accept("");
      console.error("unexpected dialog: " + d.message()); d.dismiss();
    });
    await page.goto(url);
    if ((await page.evaluate(() => document.documentElement.lang)) !== "zh-CN") throw new Error("not Chinese by default");
    await page.fill("#name", name);
    await page.fill("#password", "wrong-password");
    await page.click("#login-button");
    await page.locator("#error", { hasText: "姓名或密码错误" }).waitFor({ timeout: 10000 });
    await page.fill("#password", password);
    await page.click("#login-button");
    await page.locator("#app").waitFor({ state: "visible", timeout: 10000 });
    await page.locator("#who-am-i", { hasText: name + " · 值班员" }).waitFor({ timeout: 5000 });
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "gs_session");
    if (!session || !session.httpOnly || session.sameSite !== "Strict") throw new Error("session cookie " + JSON.stringify(session));
    // A token of the same person for the action taken "elsewhere" below.
    const tok = await fetch(`${url}api/v1/tokens`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, password, label: "console test" }),
    }).then((r) => r.json());
    const red = page.locator('.order[data-rule="slope-tangent-angle"][data-colour="red"][data-state="raised"]').first();
    await red.waitFor({ timeout: 90000 });
    const id = await red.getAttribute("data-order-id");
    const card = `.order[data-order-id="${id}"]`;
    // In Chinese, with names: the rule's name and the site's name and street in the title, the
    // summary with its units.
    const title = await page.locator(`${card} .title`).textContent();
    if (!title.startsWith("边坡加速变形 · 鹅岭边坡")) throw new Error("title: " + title);
    const summary = await page.locator(`${card} .summary`).textContent();
    if (!/切线角 [0-9.]+°（速率 [-0-9.]+ mm\/天/.test(summary)) throw new Error("summary: " + summary);
    await page.locator("#lane-red h3", { hasText: "红色" }).waitFor({ timeout: 5000 });
    await page.locator(`${card} button[data-action="ack"]`, { hasText: "确认" }).waitFor({ timeout: 5000 });
    // The red order sounds: the audio context runs (started by the login click) and beeps.
    await page.waitForFunction(() => window.gridsentry.alarm === "red" && window.gridsentry.beeps > 0, null, { timeout: 10000 });
    const audio = await page.evaluate(() => window.gridsentry.audio.state);
    if (audio !== "running") throw new Error("audio context " + audio);
    // Dispatching does not stop the tone: only an acknowledgement does.
    await page.locator(`${card} button[data-action="dispatch"]`).click();
    await page.locator(`${card}[data-state="dispatched"]`).waitFor({ timeout: 15000 });
    const beeps = await page.evaluate(() => window.gridsentry.beeps);
    await page.waitForFunction((n) => window.gridsentry.alarm === "red" && window.gridsentry.beeps > n, beeps, { timeout: 10000 });
    await page.locator(`${card} button[data-action="ack"]`).click();
    await page.locator(`${card}[data-state="acknowledged"]`).waitFor({ timeout: 15000 });
    await page.locator(`${card} .title`).click();
    await page.locator('#timeline-events li[data-kind="acknowledged"]').waitFor({ timeout: 15000 });
    // Times in the config's zone (demo: Asia/Shanghai), whatever the browser's: the clock says
    // GMT+8 and the timeline's first event reads as Shanghai's wall clock.
    await page.locator("#clock", { hasText: "GMT+8" }).waitFor({ timeout: 5000 }).catch(async () => {
      throw new Error("clock: " + (await page.locator("#clock").textContent()));
    });
    const first = await page.locator("#timeline-events li").first().textContent();
    const history = await fetch(`${url}api/v1/orders/${id}`, { headers: { Authorization: `Bearer ${tok.token}` } }).then((r) => r.json());
    const shanghai = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(history.events[0].at_ms);
    if (!first.startsWith(shanghai)) throw new Error("timeline in local time: " + first + " (want " + shanghai + ")");
    // The timeline in Chinese: event names translated, the deadline clock and rules as 系统.
    const raisedLine = await page.locator('#timeline-events li[data-kind="raised"]').first().textContent();
    if (!raisedLine.includes("发起") || !raisedLine.includes("操作人 系统")) throw new Error("timeline: " + raisedLine);
    // Cards are updated in place: 50 real presses (held 100 and 250 ms, across the console's
    // one-second updates and the demo's pushed events) each reach their handler.
    const opened = await page.evaluate(() => window.gridsentry.opened);
    const streamed = await page.evaluate(() => window.gridsentry.events);
    for (let i = 0; i < 50; i++) {
      const box = await page.locator(`${card} .title`).boundingBox();
      await page.mouse.move(box.x + 10, box.y + box.height / 2);
      await page.mouse.down();
      await new Promise((ok) => setTimeout(ok, i % 2 ? 250 : 100));
      await page.mouse.up();
    }
    await page.waitForFunction((n) => window.gridsentry.opened >= n + 50, opened, { timeout: 5000 }).catch(async () => {
      throw new Error("presses handled: " + ((await page.evaluate(() => window.gridsentry.opened)) - opened) + " of 50");
    });
    const during = (await page.evaluate(() => window.gridsentry.events)) - streamed;
    await page.locator("#devices tr svg path").first().waitFor({ timeout: 15000 });
    const devices = await page.locator("#devices tr").count();
    // Pushed, not polled: an action taken elsewhere shows within 3 s (the poll is every 10 s),
    // carried by an event on the stream.
    const events = await page.evaluate(() => window.gridsentry.events);
    const r = await fetch(`${url}api/v1/orders/${id}/on-site`, {
      method: "POST",
      headers: { Authorization: `Bearer ${tok.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ why: "field team there" }),
    });
    if (!r.ok) throw new Error("on-site through the API: HTTP " + r.status);
    await page.locator(`${card}[data-state="on_site"]`).waitFor({ timeout: 3000 });
    if ((await page.evaluate(() => window.gridsentry.events)) <= events) throw new Error("no pushed event");
    // The map: one dot per site of config/demo.toml, the slope's red; a street shows only its own.
    const dots = await page.locator("#map circle").count();
    if (dots !== 6) throw new Error(dots + " sites on the map");
    await page.locator('#map circle[data-site="slope-7"][data-colour="red"]').waitFor({ timeout: 3000 });
    await page.selectOption("#street", "上清寺街道");
    if ((await page.locator("#map circle").count()) !== 1) throw new Error("street filter");
    if ((await page.locator("#devices tr").count()) !== 1) throw new Error("devices of the street");
    await page.selectOption("#street", "");
    await page.locator(".lang").last().click();
    await page.locator("#lane-red h3", { hasText: "Red" }).waitFor({ timeout: 3000 });
    await page.screenshot({ path: shot, fullPage: true });
    // On a phone (390 px): nothing wider than the screen, buttons a thumb can hit.
    await page.setViewportSize({ width: 390, height: 844 });
    const layout = () => ({
      width: document.documentElement.scrollWidth,
      smallest: Math.min(...[...document.querySelectorAll(".actions button, header button")].filter((b) => b.offsetParent).map((b) => b.getBoundingClientRect().height)),
    });
    const fits = await page.waitForFunction(() => {
      const heights = [...document.querySelectorAll(".actions button, header button")].filter((b) => b.offsetParent);
      return document.documentElement.scrollWidth <= 390 && Math.min(...heights.map((b) => b.getBoundingClientRect().height)) >= 44;
    }, null, { timeout: 5000 }).catch(() => null);
    if (!fits) throw new Error("phone layout: " + JSON.stringify(await page.evaluate(layout)));
    await page.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1600, height: 1000 });
    // A reload keeps the session but the browser will not play sound before a click: the banner
    // says so, the mute button does not pretend, and one click brings the sound back.
    await page.reload();
    await page.locator("#app").waitFor({ state: "visible", timeout: 10000 });
    await page.locator("#sound-banner", { hasText: "Click to turn the alarm sound on" }).waitFor({ timeout: 10000 });
    if ((await page.locator("#mute").textContent()) !== "Sound off") throw new Error("mute button: " + (await page.locator("#mute").textContent()));
    await page.click("#sound-banner");
    await page.waitForFunction(() => window.gridsentry.audio && window.gridsentry.audio.state === "running"
      && !window.gridsentry.banner && (!window.gridsentry.alarm || window.gridsentry.beeps > 0), null, { timeout: 10000 });
    await page.click("#logout");
    await page.locator("#login").waitFor({ state: "visible", timeout: 5000 });
    const after = await page.evaluate(() => fetch("/api/v1/me", { credentials: "same-origin" }).then((r) => r.status));
    if (after !== 401) throw new Error("after logging out /api/v1/me answered " + after);
    console.log(JSON.stringify({ order: Number(id), devices, token: tok.token, pressed: 50, events_during_presses: during }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
