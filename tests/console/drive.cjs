// Drives the console in headless Chromium (Debian `chromium`) with playwright-core: the page
// is in Chinese; log in (the click starts the sound), wait for the demo's red slope order and
// its alarm tone, acknowledge it, see the state change and the timeline; then an action made
// elsewhere (through the API) reaches the page pushed (SSE); English on a click; screenshot.
//   node drive.cjs URL TOKEN SCREENSHOT
const { chromium } = require("playwright-core");

(async () => {
  const [url, token, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("dialog", (d) => { console.error("unexpected dialog: " + d.message()); d.dismiss(); });
    await page.goto(url);
    if ((await page.evaluate(() => document.documentElement.lang)) !== "zh-CN") throw new Error("not Chinese by default");
    await page.fill("#token", "wrong-token");
    await page.click("#login-button");
    await page.locator("#error", { hasText: "令牌被拒绝" }).waitFor({ timeout: 10000 });
    await page.fill("#token", token);
    await page.fill("#operator", "console-test");
    await page.click("#login-button");
    await page.locator("#app").waitFor({ state: "visible", timeout: 10000 });
    const red = page.locator('.order[data-rule="slope-tangent-angle"][data-colour="red"][data-state="raised"]').first();
    await red.waitFor({ timeout: 90000 });
    const id = await red.getAttribute("data-order-id");
    const card = `.order[data-order-id="${id}"]`;
    await page.locator("#lane-red h3", { hasText: "红色" }).waitFor({ timeout: 5000 });
    await page.locator(`${card} button[data-action="ack"]`, { hasText: "确认" }).waitFor({ timeout: 5000 });
    // The red order sounds: the audio context runs (started by the login click) and beeps.
    await page.waitForFunction(() => window.gridsentry.alarm === "red" && window.gridsentry.beeps > 0, null, { timeout: 10000 });
    const audio = await page.evaluate(() => window.gridsentry.audio.state);
    if (audio !== "running") throw new Error("audio context " + audio);
    await page.locator(`${card} button[data-action="ack"]`).click();
    await page.locator(`${card}[data-state="acknowledged"]`).waitFor({ timeout: 15000 });
    await page.locator(`${card} .title`).click();
    await page.locator('#timeline-events li[data-kind="acknowledged"]').waitFor({ timeout: 15000 });
    await page.locator("#devices tr svg path").first().waitFor({ timeout: 15000 });
    const devices = await page.locator("#devices tr").count();
    // Pushed, not polled: an action taken elsewhere shows within 3 s (the poll is every 10 s),
    // carried by an event on the stream.
    const events = await page.evaluate(() => window.gridsentry.events);
    const r = await fetch(`${url}api/v1/orders/${id}/on-site`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ who: "field-team" }),
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
    console.log(JSON.stringify({ order: Number(id), devices }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
