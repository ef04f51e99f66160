// Drives the console in headless Chromium (Debian `chromium`) with playwright-core:
// log in, wait for the demo's red slope order, acknowledge it, see the state change and the
// timeline, and save a screenshot.   node drive.cjs URL TOKEN SCREENSHOT
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
    await page.fill("#token", "wrong-token");
    await page.click("#login-button");
    await page.locator("#error", { hasText: "Token refused" }).waitFor({ timeout: 10000 });
    await page.fill("#token", token);
    await page.fill("#operator", "console-test");
    await page.click("#login-button");
    await page.locator("#app").waitFor({ state: "visible", timeout: 10000 });
    const red = page.locator('.order[data-rule="slope-tangent-angle"][data-colour="red"][data-state="raised"]').first();
    await red.waitFor({ timeout: 90000 });
    const id = await red.getAttribute("data-order-id");
    const card = `.order[data-order-id="${id}"]`;
    await page.locator(`${card} button[data-action="ack"]`).click();
    await page.locator(`${card}[data-state="acknowledged"]`).waitFor({ timeout: 15000 });
    await page.locator(`${card} .title`).click();
    await page.locator('#timeline-events li[data-kind="acknowledged"]').waitFor({ timeout: 15000 });
    await page.locator("#devices tr svg path").first().waitFor({ timeout: 15000 });
    const devices = await page.locator("#devices tr").count();
    await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({ order: Number(id), devices }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
