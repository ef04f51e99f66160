// Drives the console in headless Chromium (Debian `chromium`) with playwright-core: the page
// is in Chinese; a wrong password is refused; log in as a person (the click starts the sound),
// wait for the demo's red slope order and its alarm tone, dispatch it to the grid worker on duty
// (the picker), acknowledge it, see the state change and the timeline; 50 presses all handled;
// then the grid worker on his phone marks 到场 and 处置完毕 (a note required) and the operator's
// page shows it pushed (SSE); the wall view renders without interaction; English on a click; a
// phone layout; sound after a reload; log out ends the session. Screenshots: SCREENSHOT and
// its -phone, -field and -wall siblings.
//   node drive.cjs URL NAME PASSWORD SCREENSHOT FIELD_NAME FIELD_PASSWORD
const { chromium } = require("playwright-core");

(async () => {
  const [url, name, password, shot, fieldName, fieldPassword] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    // The browser in another zone than the daemon: times must still read as Shanghai's.
    const desk = await browser.newContext({ viewport: { width: 1600, height: 1000 }, timezoneId: "America/New_York" });
    const page = await desk.newPage();
    // The one confirmation the desk expects is 一键预警's; anything else is dismissed.
    const warnings = [];
    page.on("dialog", (d) => {
      if (d.type() === "confirm" && d.message().startsWith("向该隐患点的居民发送撤离预警")) { warnings.push(d.message()); return d.accept(); }
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
    // Dispatch opens the picker: the grid worker on duty for the slope's street comes first.
    await page.locator(`${card} button[data-action="dispatch"]`).click();
    const pickWang = page.locator(`#picker-list button[data-person="${fieldName}"]`, { hasText: "值班中" });
    await pickWang.waitFor({ timeout: 5000 });
    const firstPick = await page.locator("#picker-list button").first().getAttribute("data-person");
    if (firstPick !== fieldName) throw new Error("picker starts with " + firstPick);
    await pickWang.click();
    // Dispatching does not stop the tone: only an acknowledgement does.
    await page.locator(`${card}[data-state="dispatched"][data-assignee="${fieldName}"]`).waitFor({ timeout: 15000 });
    const beeps = await page.evaluate(() => window.gridsentry.beeps);
    await page.waitForFunction((n) => window.gridsentry.alarm === "red" && window.gridsentry.beeps > n, beeps, { timeout: 10000 });
    await page.locator(`${card} button[data-action="ack"]`).click();
    await page.locator(`${card}[data-state="acknowledged"]`).waitFor({ timeout: 15000 });
    // 一键预警: the red slope order warns the residents below; a confirmation names the route
    // first; the button then says it was sent (a second warning of the order would be refused).
    await page.locator(`${card} button[data-action="warn"]`, { hasText: "一键预警" }).click();
    await page.locator(`${card} button[data-action="warn"]`, { hasText: "已发送预警" }).waitFor({ timeout: 5000 });
    if (warnings.length !== 1 || !warnings[0].includes("撤离路线：沿鹅岭正街")) throw new Error("warning confirmation: " + warnings);
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
    // The rota beside the map: the slope's street, Wang on duty (all day).
    await page.locator('#rota li.now[data-street="上清寺街道"]', { hasText: "grid-worker-wang" }).waitFor({ timeout: 15000 });
    await page.locator("#devices tr svg path").first().waitFor({ timeout: 15000 });
    const devices = await page.locator("#devices tr").count();
    // The map: one dot per site of config/demo.toml, the slope's red; a street shows only its own.
    const dots = await page.locator("#map circle").count();
    if (dots !== 6) throw new Error(dots + " sites on the map");
    await page.locator('#map circle[data-site="slope-7"][data-colour="red"]').waitFor({ timeout: 3000 });
    await page.selectOption("#street", "上清寺街道");
    if ((await page.locator("#map circle").count()) !== 1) throw new Error("street filter");
    if ((await page.locator("#devices tr").count()) !== 1) throw new Error("devices of the street");
    await page.selectOption("#street", "");
    await page.screenshot({ path: shot, fullPage: true });

    // A silence: the operator holds a plaza's pages for 2 hours (listed with who and why; an
    // operator is not offered red), then ends it with 结束.
    await page.locator("#silence-form").waitFor({ state: "visible", timeout: 5000 });
    if (await page.locator("#silence-red-label").isVisible()) throw new Error("an operator is offered to silence red");
    await page.selectOption("#silence-field", "site");
    await page.fill("#silence-value", "plaza-3");
    await page.fill("#silence-hours", "2");
    await page.fill("#silence-reason", "更换噪声监测箱");
    await page.click("#silence-add");
    const silenced = page.locator('#silences li[data-match="site=plaza-3"]', { hasText: "更换噪声监测箱" });
    await silenced.waitFor({ timeout: 5000 });
    const silenceLine = await silenced.textContent();
    if (!silenceLine.includes(name) || !silenceLine.includes("至")) throw new Error("silence line: " + silenceLine);
    const silence = Number(await silenced.getAttribute("data-silence"));
    await page.locator(`#silences button[data-end="${silence}"]`, { hasText: "结束" }).click();
    await silenced.waitFor({ state: "detached", timeout: 5000 });

    // Incidents beside the map: the red slope order opened its street's; choosing it shows only
    // its orders in the lanes, choosing it again shows all.
    const slopeIncident = page.locator("#incidents li", { hasText: "上清寺街道" });
    await slopeIncident.waitFor({ timeout: 15000 });
    const incident = Number(await slopeIncident.getAttribute("data-incident"));
    await page.locator(`#incidents button[data-incident="${incident}"]`).click();
    await page.locator(`.lane [data-incident="${incident}"]`).first().waitFor({ timeout: 5000 });
    const strangers = await page.locator(`.lane .order:not([data-incident="${incident}"])`).count();
    if (strangers) throw new Error(strangers + " orders of other incidents shown with incident " + incident);
    await page.locator(`#incidents button[data-incident="${incident}"]`, { hasText: "显示全部" }).click();

    // Grid worker Wang on his phone: only his orders, where they are, two big buttons.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: "America/New_York", isMobile: true, hasTouch: true });
    const wp = await phone.newPage();
    const notes = ["", "清理坡脚落石，已设警戒，转交地灾专班"];
    const dialogs = [];
    let alertSeen;
    const alerted = new Promise((ok) => { alertSeen = ok; });
    wp.on("dialog", (d) => {
      dialogs.push(d.type() + ": " + d.message());
      if (d.type() === "alert") alertSeen(d.message());
      if (d.type() === "confirm") return d.accept();
      if (d.type() === "prompt") return d.accept(notes.shift() ?? "");
      return d.dismiss();
    });
    await wp.goto(url);
    await wp.fill("#name", fieldName);
    await wp.fill("#password", fieldPassword);
    await wp.tap("#login-button");
    await wp.locator("#mine").waitFor({ state: "visible", timeout: 10000 });
    const mine = `#mine-list .order[data-order-id="${id}"]`;
    await wp.locator(mine).waitFor({ timeout: 10000 });
    const assignees = await wp.locator("#mine-list .order").evaluateAll((els) => els.map((e) => e.getAttribute("data-assignee")));
    if (assignees.some((a) => a !== fieldName)) throw new Error("not only his orders: " + assignees);
    if (await wp.locator("#lane-red").isVisible()) throw new Error("a grid worker sees the operators' lanes");
    const geo = await wp.locator(`${mine} .where a`).getAttribute("href");
    if (!geo.startsWith("geo:29.5561,106.538")) throw new Error("geo link " + geo);
    if ((await wp.evaluate(() => document.documentElement.scrollWidth)) > 390) throw new Error("field view wider than the phone");
    await wp.screenshot({ path: shot.replace(/\.png$/, "-field.png"), fullPage: true });
    // 到场 on the phone reaches the operator's console pushed, not polled (the poll is every 10 s).
    const events = await page.evaluate(() => window.gridsentry.events);
    await wp.locator(`${mine} button[data-action="on-site"]`, { hasText: "到场" }).tap();
    await page.locator(`${card}[data-state="on_site"]`).waitFor({ timeout: 3000 });
    if ((await page.evaluate(() => window.gridsentry.events)) <= events) throw new Error("no pushed event");
    // 处置完毕 without a note is refused on the phone (nothing sent); with one it is resolved.
    await wp.locator(`${mine}[data-state="on_site"] button[data-action="resolve"]`, { hasText: "处置完毕" }).tap();
    const said = await Promise.race([alerted, new Promise((ok) => setTimeout(() => ok("no alert within 5 s"), 5000))]);
    if (!said.startsWith("请填写处置说明")) throw new Error("no note asked for: " + said + " " + dialogs);
    if ((await wp.locator(mine).getAttribute("data-state")) !== "on_site") throw new Error("resolved without a note");
    await wp.locator(`${mine} button[data-action="resolve"]`).tap();
    await page.locator(`#resolved .order[data-order-id="${id}"][data-state="resolved"]`).waitFor({ timeout: 3000 });
    await phone.close();

    // The wall: a big screen that needs no clicks once logged in (the session of this browser).
    const wall = await desk.newPage();
    await wall.setViewportSize({ width: 1920, height: 1080 });
    await wall.goto(url + "?wall");
    await wall.locator("#wall").waitFor({ state: "visible", timeout: 10000 });
    await wall.locator("#wall-map circle").nth(5).waitFor({ timeout: 10000 });
    await wall.locator("#wall-clock", { hasText: "GMT+8" }).waitFor({ timeout: 5000 });
    if (await wall.locator("header").isVisible()) throw new Error("the wall shows the desk's header");
    // The tiles agree with the API's open orders (orders change while the demo runs: the wall
    // must converge to the API's answer, read in the page with its own session).
    const agree = () => wall.evaluate(async () => {
      const colours = ["red", "orange", "yellow", "blue"];
      const open = await fetch("/api/v1/orders?open=true", { credentials: "same-origin" }).then((r) => r.json());
      const want = colours.map((c) => open.orders.filter((o) => o.colour === c).length);
      const shown = colours.map((c) => Number(document.getElementById("w-" + c).textContent));
      return { ok: JSON.stringify(want) === JSON.stringify(shown), want, shown };
    });
    let last = await agree();
    for (let i = 0; i < 40 && !last.ok; i++) {
      await wall.locator("#wall-clock").waitFor();
      await wall.waitForFunction((t) => document.getElementById("wall-clock").textContent !== t,
        await wall.locator("#wall-clock").textContent(), { timeout: 5000 });
      last = await agree();
    }
    if (!last.ok) throw new Error("wall counts " + last.shown + " want " + last.want);
    await wall.screenshot({ path: shot.replace(/\.png$/, "-wall.png") });
    await wall.close();

    await page.locator(".lang").last().click();
    await page.locator("#lane-red h3", { hasText: "Red" }).waitFor({ timeout: 3000 });
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
    console.log(JSON.stringify({ order: Number(id), devices, token: tok.token, pressed: 50, events_during_presses: during, dialogs, silence, incident, warnings }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
