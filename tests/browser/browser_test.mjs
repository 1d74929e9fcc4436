// A real headless Chromium (Debian's) driven by playwright-core, against
// tessera behind nginx in front of examples/browser_app — started by
// tests/integration/test_proxies.py, which passes the addresses:
//
//   node browser_test.mjs APP_ORIGIN TESSERA_ORIGIN LISTED_ORIGIN OTHER_ORIGIN SHOT REFRESH_TOKEN
//
// APP_ORIGIN is nginx (the app and /account behind forward-auth);
// LISTED_ORIGIN serves a page whose origin is in cors_allowed_origins,
// OTHER_ORIGIN one whose origin is not. SHOT: where the /account
// screenshot goes. REFRESH_TOKEN: a token pair's refresh token for the CORS
// tabs. Exits non-zero with the first failed check.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [app, tessera, listed, other, shot, refreshToken] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const step = (name) => console.log(`browser: ${name}`);

async function login(context, user) {
  const page = await context.newPage();
  await page.goto(`${app}/some/page`);
  assert.equal(new URL(page.url()).pathname, "/login", "a denied navigation goes to /login");
  await page.fill("input[name=user]", user);
  await Promise.all([page.waitForNavigation(), page.click("button")]);
  assert.equal(page.url(), `${app}/some/page`, "back where the login started");
  return page;
}

try {
  step("log in through the app behind nginx, from two devices");
  const phone = await browser.newContext({
    userAgent: "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) " +
      "Chrome/126.0 Mobile Safari/537.36",
    viewport: { width: 390, height: 844 },
  });
  const laptop = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  await login(laptop, "alice");
  const phonePage = await login(phone, "alice");
  await phonePage.goto(`${app}/`);
  assert.equal(await phonePage.textContent("#user"), "alice");

  step("/account on the phone lists both devices, this one marked");
  await phonePage.goto(`${app}/account`);
  const items = phonePage.locator("li");
  assert.equal(await items.count(), 2);
  assert.equal(await phonePage.locator("li.here").count(), 1);
  assert.match(await phonePage.locator("li.here").textContent(), /Chrome on Android/);
  await phonePage.screenshot({ path: shot, fullPage: true });

  step("sign out the other device; its next navigation goes to the login page");
  await Promise.all([
    phonePage.waitForNavigation(),
    phonePage.locator("li:not(.here) button").click(),
  ]);
  assert.equal(new URL(phonePage.url()).pathname, "/account");
  assert.equal(await phonePage.locator("li").count(), 1);
  const laptopPage = await laptop.newPage();
  await laptopPage.goto(`${app}/`);
  assert.equal(new URL(laptopPage.url()).pathname, "/login", "the signed-out device is out");

  step("CSRF: a form on another origin posting to logout is refused");
  const evil = await phone.newPage();
  const [answer] = await Promise.all([
    evil.waitForResponse((r) => r.url() === `${app}/v1/logout`),
    evil.goto(`${other}/csrf.html?target=${encodeURIComponent(app + "/v1/logout")}`),
  ]);
  assert.equal(answer.status(), 403);
  assert.equal((await answer.json()).code, "origin_not_allowed");
  await phonePage.goto(`${app}/`);
  assert.equal(await phonePage.textContent("#user"), "alice", "still signed in");

  step("CORS: two tabs of a listed origin refresh with one token at once");
  const tabs = await Promise.all([phone.newPage(), phone.newPage()]);
  await Promise.all(tabs.map((t) => t.goto(`${listed}/page.html`)));
  const results = await Promise.all(tabs.map((t) => t.evaluate(async ([url, token]) => {
    const r = await fetch(url, {
      method: "POST", credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: token }),
    });
    return { status: r.status, body: await r.json(), id: r.headers.get("X-Request-Id") };
  }, [`${tessera}/v1/tokens/refresh`, refreshToken])));
  for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(results[0].id, "an exposed header is readable");
  assert.equal(results[0].body.refresh_token, results[1].body.refresh_token,
    "both tabs got the same successor");
  assert.equal(results[0].body.session.metadata, undefined, "a public answer");

  step("CORS: a page of another origin cannot read the answer");
  const stranger = await phone.newPage();
  await stranger.goto(`${other}/page.html`);
  const blocked = await stranger.evaluate(async (url) => {
    try {
      await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                         body: "{}" });
      return "read";
    } catch (e) {
      return "blocked";
    }
  }, `${tessera}/v1/tokens/refresh`);
  assert.equal(blocked, "blocked");
  console.log("browser: every check passed");
} finally {
  await browser.close();
}
