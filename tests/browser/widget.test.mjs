// Browser tests of the Lotse widget, in Debian's chromium (playwright-core) against a fixture
// site whose pages carry the widget's script tag, and a running `lotse serve` with the real
// models. Started by run.sh, which sets:
//   LOTSE_SITE       origin of the fixture site        LOTSE_API   origin of lotse serve
//   LOTSE_QUESTION   a development question            LOTSE_EXPECTED  its expected paths (comma-separated)
//   LOTSE_BYLAW      path of a by-law page             LOTSE_ARTIFACTS directory for screenshots
// Each check prints "ok" or "FAIL"; the exit code is the number of failures.

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const SITE = process.env.LOTSE_SITE;
const API = process.env.LOTSE_API;
const QUESTION = process.env.LOTSE_QUESTION;
const EXPECTED = (process.env.LOTSE_EXPECTED || "").split(",").filter(Boolean);
const BYLAW = process.env.LOTSE_BYLAW;
const OUT = process.env.LOTSE_ARTIFACTS || "test-artifacts/browser";
const ANSWER_TIMEOUT = 15 * 60 * 1000;
// a question whose answer rests on a figure of a by-law: its answer quotes the by-law word for word
const QUOTE_QUESTION = "Was kostet der Eintritt ins Freibad?";
const EMOJI = /[\p{Extended_Pictographic}\u{FE0F}]/u;
for (const [k, v] of Object.entries({ SITE, API, QUESTION, BYLAW })) {
  if (!v) { console.error(`LOTSE_${k} is not set`); process.exit(2); }
}
mkdirSync(OUT, { recursive: true });

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: String(e && e.stack || e) });
    console.log(`FAIL  ${name}: ${e && e.message || e}`);
  }
}

/** Serious and critical axe violations of the page (the widget's shadow trees included). */
async function axeViolations(page, label) {
  await page.addScriptTag({ content: AXE });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return res.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary })),
    }));
  });
  writeFileSync(join(OUT, `axe-${label}.json`), JSON.stringify(r, null, 2));
  const bad = r.filter((v) => v.impact === "serious" || v.impact === "critical");
  const inWidget = (v) => v.nodes.some((n) => JSON.stringify(n.target).includes("lotse"));
  const other = bad.filter((v) => !inWidget(v));
  if (other.length) {
    console.log(`      note: the fixture page itself has ${other.length} serious/critical findings (${other.map((v) => v.id).join(", ")})`);
  }
  return bad.filter(inWidget);
}

/** What has the focus, through the widget's shadow root. */
async function focused(page) {
  return page.evaluate(() => {
    const a = document.activeElement;
    if (!a) return null;
    if (a.shadowRoot && a.shadowRoot.activeElement) {
      const e = a.shadowRoot.activeElement;
      return { host: a.id, cls: e.className || "", id: e.id || "", tag: e.tagName };
    }
    return { host: "", cls: a.className || "", id: a.id || "", tag: a.tagName };
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
  const page = await desktop.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await check("the script tag mounts the widget on a CMS page", async () => {
    await page.goto(`${SITE}/`, { waitUntil: "load" });
    await page.locator("#lotse-chat .launcher").waitFor({ state: "visible", timeout: 30000 });
    const name = await page.locator("#lotse-chat .launcher").innerText();
    assert.match(name, /\S/, "the launcher has a visible name");
    const headLeak = await page.evaluate(() => [...document.head.querySelectorAll("style,link")]
      .some((e) => (e.textContent || "").includes("lotse") || (e.href || "").includes("/widget/")));
    assert.equal(headLeak, false, "no widget styles in the page's head");
  });

  await check("CMS styles do not reach into the widget", async () => {
    await page.addStyleTag({ content: "button, div, span, p, input { font-size: 40px !important; color: #f0f !important; letter-spacing: 9px !important; } * { font-family: serif !important; }" });
    const style = await page.evaluate(() => {
      const b = document.querySelector("#lotse-chat").shadowRoot.querySelector(".launcher");
      const cs = getComputedStyle(b);
      return { size: cs.fontSize, color: cs.color, spacing: cs.letterSpacing, family: cs.fontFamily };
    });
    assert.equal(style.size, "16px");
    assert.notEqual(style.color, "rgb(255, 0, 255)");
    assert.ok(!/^serif$/.test(style.family), `font ${style.family}`);
  });

  await check("axe: no serious or critical violation with the chat closed", async () => {
    const v = await axeViolations(page, "home-closed");
    assert.deepEqual(v.map((x) => `${x.id}: ${x.help}`), []);
  });

  await check("keyboard: Tab reaches the launcher, Enter opens the dialog with the focus in it", async () => {
    await page.goto(`${SITE}/`, { waitUntil: "load" });
    await page.locator("#lotse-chat .launcher").waitFor({ state: "visible" });
    let f = null;
    for (let i = 0; i < 300; i++) {
      await page.keyboard.press("Tab");
      f = await focused(page);
      if (f && f.host === "lotse-chat" && String(f.cls).includes("launcher")) break;
    }
    assert.ok(f && String(f.cls).includes("launcher"), `focus on the launcher (got ${JSON.stringify(f)})`);
    await page.keyboard.press("Enter");
    await page.locator("#lotse-chat [role=dialog]").waitFor({ state: "visible", timeout: 5000 });
    await page.waitForFunction(() => document.querySelector("#lotse-chat").shadowRoot.activeElement?.id === "lotse-q");
    const modal = await page.locator("#lotse-chat [role=dialog]").getAttribute("aria-modal");
    assert.equal(modal, "true");
    const live = await page.locator("#lotse-chat [aria-live]").first().getAttribute("aria-live");
    assert.equal(live, "polite");
  });

  await check("axe: no serious or critical violation with the chat open", async () => {
    // the dialog fades in: measure contrast once its transitions have finished, not halfway
    await page.evaluate(() =>
      Promise.all(
        document
          .querySelector("#lotse-chat")
          .shadowRoot.getAnimations()
          .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity) // not the busy spinners
          .map((a) => a.finished.catch(() => {})),
      ),
    );
    const v = await axeViolations(page, "home-open");
    assert.deepEqual(v.map((x) => `${x.id}: ${x.help}`), []);
  });

  await check("keyboard: Tab stays inside the open dialog", async () => {
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press("Tab");
      const f = await focused(page);
      assert.equal(f.host, "lotse-chat", `focus left the dialog after ${i + 1} Tabs`);
    }
    await page.locator("#lotse-chat #lotse-q").focus();
  });

  let answerText = "";
  await check("chat: a development question gets an answer with a source link to an expected page", async () => {
    const t0 = Date.now();
    await page.keyboard.type(QUESTION);
    await page.keyboard.press("Enter");
    await page.locator("#lotse-chat .exchange .user").first().waitFor();
    // streamed text or the final answer, whichever comes first
    await page.locator("#lotse-chat .exchange .bot .text").first().waitFor({ timeout: ANSWER_TIMEOUT });
    const firstText = Date.now() - t0;
    await page.locator("#lotse-chat .exchange .meta .label").first().waitFor({ timeout: ANSWER_TIMEOUT });
    const total = Date.now() - t0;
    const links = await page.locator("#lotse-chat .exchange .sources a").evaluateAll((as) => as.map((a) => a.href));
    answerText = await page.locator("#lotse-chat .exchange .bot .text").first().innerText();
    const label = await page.locator("#lotse-chat .exchange .meta .label").first().innerText();
    console.log(`      first text after ${(firstText / 1000).toFixed(1)} s, answer after ${(total / 1000).toFixed(1)} s; sources: ${links.join(" ")}`);
    assert.equal(label, "KI-generiert");
    assert.ok(links.length > 0, `sources listed (answer: ${answerText})`);
    const hit = links.some((h) => EXPECTED.some((p) => new URL(h).pathname === p));
    assert.ok(hit, `a source on ${EXPECTED.join(" or ")}; got ${links.join(", ")}`);
    const busy = await page.locator("#lotse-chat [role=log]").getAttribute("aria-busy");
    assert.equal(busy, "false");
    await page.waitForTimeout(400); // the opening animation
    await page.screenshot({ path: join(OUT, "chat-desktop.png") });
  });

  await check("chat: the meta line names the label once; the thumbs are icons, not emoji", async () => {
    const meta = await page.locator("#lotse-chat .exchange .meta").first().innerText();
    assert.equal(meta.split("KI-generiert").length - 1, 1, `"KI-generiert" once in "${meta}"`);
    const thumbs = await page.locator("#lotse-chat .exchange .thumb").evaluateAll((bs) => bs.map((b) => ({
      name: b.getAttribute("aria-label"), svg: b.querySelectorAll("svg").length, text: b.textContent,
    })));
    assert.deepEqual(thumbs.map((t) => t.name), ["Ja, hilfreich", "Nein, nicht hilfreich"]);
    for (const t of thumbs) {
      assert.equal(t.svg, 1, `an svg icon in "${t.name}"`);
      assert.ok(!EMOJI.test(t.text), `no emoji in "${t.name}": ${JSON.stringify(t.text)}`);
    }
    const chrome = await page.evaluate(() => [...document.querySelector("#lotse-chat").shadowRoot
      .querySelectorAll(".launcher, .close, .send, .thumb")].map((e) => e.textContent).join(" "));
    assert.ok(!EMOJI.test(chrome), `no emoji on the chat's buttons: ${JSON.stringify(chrome)}`);
  });

  await check("chat: thumbs up is stored (204) and thanked", async () => {
    const resp = page.waitForResponse((r) => r.url().includes("/api/v1/feedback"));
    await page.locator("#lotse-chat .thumb").first().click();
    assert.equal((await resp).status(), 204);
    await page.locator("#lotse-chat .feedback-note", { hasText: "Danke" }).waitFor({ timeout: 5000 });
    await page.locator("#lotse-chat #lotse-q").focus();
  });

  await check("chat: a question about a fee shows the source's wording (\"Im Wortlaut\") with a link to the cited page", async () => {
    const t0 = Date.now();
    await page.locator("#lotse-chat #lotse-q").fill(QUOTE_QUESTION);
    await page.locator("#lotse-chat #lotse-q").press("Enter");
    await page.locator("#lotse-chat .exchange").nth(1).waitFor();
    const x = page.locator("#lotse-chat .exchange").nth(1);
    // the quotes come before the answer's text; a server without quotes fails here at the end
    await x.locator("blockquote, .meta .label").first().waitFor({ timeout: ANSWER_TIMEOUT });
    const early = (await x.locator(".meta").count()) === 0;
    console.log(`      after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${early ? "a quote before the final answer" : "the final answer"}`);
    await x.locator(".meta .label").waitFor({ timeout: ANSWER_TIMEOUT });
    const quotes = await x.locator("figure.quote").evaluateAll((fs) => fs.map((f) => {
      const q = f.querySelector("blockquote");
      const a = f.querySelector("figcaption a");
      return { text: q?.textContent.trim() || "", lang: q?.getAttribute("lang"), cite: q?.getAttribute("cite"), href: a?.getAttribute("href") || "", link: a?.textContent || "" };
    }));
    console.log(`      quotes: ${JSON.stringify(quotes)}`);
    assert.ok(quotes.length > 0, `at least one quote (answer: ${await x.locator(".text").first().innerText()})`);
    const site = new URL(SITE).origin;
    for (const q of quotes) {
      assert.ok(q.text.length > 0, "the quote has text");
      assert.equal(q.lang, "de");
      assert.ok(q.href && new URL(q.href).origin === site, `the quote links to the site: ${q.href}`);
      assert.equal(q.cite, q.href, "the blockquote cites the linked place");
      assert.match(q.link, /Quelle \[\d+\]/);
    }
    assert.match(await x.locator(".quotes-title").innerText(), /Im Wortlaut/);
    const v = await axeViolations(page, "chat-quotes");
    assert.deepEqual(v.map((y) => `${y.id}: ${y.help}`), []);
    await page.screenshot({ path: join(OUT, "chat-quotes-desktop.png") });
    await page.locator("#lotse-chat #lotse-q").focus();
  });

  await check("keyboard: Escape closes the dialog and the focus returns to the launcher", async () => {
    await page.keyboard.press("Escape");
    await page.locator("#lotse-chat [role=dialog]").waitFor({ state: "hidden", timeout: 5000 });
    await page.waitForFunction(() => document.querySelector("#lotse-chat").shadowRoot.activeElement?.classList.contains("launcher"));
  });

  await check("chat: clear German states for rate limiting, a busy server and offline (simulated responses)", async () => {
    await page.locator("#lotse-chat .launcher").click();
    const ask = async (q) => {
      await page.locator("#lotse-chat #lotse-q").fill(q);
      await page.locator("#lotse-chat #lotse-q").press("Enter");
    };
    await page.route("**/api/v1/chat", (r) => r.fulfill({
      status: 429, headers: { "content-type": "application/json", "retry-after": "30", "access-control-allow-origin": "*", "access-control-expose-headers": "retry-after" },
      body: JSON.stringify({ error: { code: "rate_limited", message: "Sie haben in kurzer Zeit sehr viele Anfragen gestellt." } }),
    }));
    await ask("Frage eins");
    await page.locator("#lotse-chat .error", { hasText: "30 Sekunden" }).waitFor({ timeout: 5000 });
    await page.unroute("**/api/v1/chat");
    await page.route("**/api/v1/chat", (r) => r.fulfill({
      status: 503, headers: { "content-type": "application/json", "access-control-allow-origin": "*" }, body: "{}",
    }));
    await ask("Frage zwei");
    await page.locator("#lotse-chat .error", { hasText: "ausgelastet" }).waitFor({ timeout: 5000 });
    await page.unroute("**/api/v1/chat");
    await desktop.setOffline(true);
    await page.locator("#lotse-chat .offline").waitFor({ timeout: 5000 });
    await ask("Frage drei");
    await page.locator("#lotse-chat .notice", { hasText: "offline" }).waitFor({ timeout: 5000 });
    await desktop.setOffline(false);
    await page.locator("#lotse-chat .offline").waitFor({ state: "detached", timeout: 5000 });
    await page.keyboard.press("Escape");
  });

  await check("reduced motion: no animation when the user asks for none", async () => {
    await page.emulateMedia({ reducedMotion: "reduce" });
    await page.locator("#lotse-chat .launcher").click();
    const anim = await page.evaluate(() => getComputedStyle(document.querySelector("#lotse-chat").shadowRoot.querySelector(".dialog")).animationName);
    assert.equal(anim, "none");
    await page.keyboard.press("Escape");
    await page.emulateMedia({ reducedMotion: "no-preference" });
  });

  await check("Einfache Sprache: the plain version appears in place; toggling back restores the original exactly", async () => {
    await page.goto(`${SITE}${BYLAW}`, { waitUntil: "load" });
    const button = page.locator("#lotse-simplify .simplify-button");
    await button.waitFor({ state: "visible", timeout: 30000 });
    const place = await page.evaluate(() => {
      const host = document.querySelector("#lotse-simplify");
      const h1 = document.querySelector("main h1");
      return {
        inMain: !!host.closest("main"),
        h1: !!h1,
        afterH1: !!h1 && (h1.compareDocumentPosition(host) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0,
        next: !!h1 && h1.nextElementSibling === host,
      };
    });
    assert.ok(place.inMain && place.h1, `the button and an h1 in the main content: ${JSON.stringify(place)}`);
    assert.ok(place.afterH1, "the button comes after the main heading");
    assert.ok(place.next, "the button follows the main heading directly");
    const before = await page.evaluate(() => document.querySelector("main").innerHTML);
    const t0 = Date.now();
    await button.click();
    const loading = await page.locator("#lotse-simplify .status").innerText();
    console.log(`      while waiting: "${loading}"`);
    await page.locator("[data-lotse-plain]").waitFor({ timeout: ANSWER_TIMEOUT });
    console.log(`      plain version after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const plain = await page.locator("[data-lotse-plain]").innerText();
    assert.match(plain, /KI-generiert/);
    const links = await page.locator("[data-lotse-plain] a").evaluateAll((as) => as.map((a) => a.href));
    assert.ok(links.some((h) => new URL(h).pathname === new URL(`${SITE}${BYLAW}`).pathname), `a link to the original (${links.join(", ")})`);
    assert.match(await button.innerText(), /Original/);
    await page.screenshot({ path: join(OUT, "einfache-sprache-desktop.png"), fullPage: false });
    const v = await axeViolations(page, "bylaw-plain");
    assert.deepEqual(v.map((x) => `${x.id}: ${x.help}`), [], "axe with the plain version shown");
    await button.click();
    await page.locator("[data-lotse-plain]").waitFor({ state: "detached", timeout: 5000 });
    const after = await page.evaluate(() => document.querySelector("main").innerHTML);
    assert.equal(after, before, "the original is restored exactly");
  });

  await check("360 px wide screen: the dialog fits and works", async () => {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "de-DE" });
    const p = await phone.newPage();
    await p.goto(`${SITE}/`, { waitUntil: "load" });
    await p.locator("#lotse-chat .launcher").click();
    const dialog = p.locator("#lotse-chat [role=dialog]");
    await dialog.waitFor({ state: "visible" });
    const box = await dialog.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 360.5, `dialog within 360 px: ${JSON.stringify(box)}`);
    const send = await p.locator("#lotse-chat .send").boundingBox();
    assert.ok(send.x + send.width <= 360.5 && send.y + send.height <= 740.5, `send button on screen: ${JSON.stringify(send)}`);
    await p.waitForTimeout(400); // the opening animation
    await p.screenshot({ path: join(OUT, "chat-360px.png") });
    await p.locator("#lotse-chat .close").click();
    await p.goto(`${SITE}${BYLAW}`, { waitUntil: "load" });
    await p.locator("#lotse-simplify .simplify-button").waitFor({ state: "visible" });
    await p.screenshot({ path: join(OUT, "einfache-sprache-button-360px.png") });
    await phone.close();
  });

  await check("200% zoom: the dialog and its controls stay on screen", async () => {
    // 200% zoom of a 1280 x 900 window is a 640 x 450 CSS-pixel viewport at twice the density
    const zoom = await browser.newContext({ viewport: { width: 640, height: 450 }, deviceScaleFactor: 2, locale: "de-DE" });
    const p = await zoom.newPage();
    await p.goto(`${SITE}/`, { waitUntil: "load" });
    await p.locator("#lotse-chat .launcher").click();
    for (const sel of ["[role=dialog]", ".close", "#lotse-q", ".send"]) {
      const b = await p.locator(`#lotse-chat ${sel}`).boundingBox();
      assert.ok(b && b.x >= 0 && b.y >= 0 && b.x + b.width <= 640.5 && b.y + b.height <= 450.5, `${sel} on screen: ${JSON.stringify(b)}`);
    }
    await p.waitForTimeout(400);
    await p.screenshot({ path: join(OUT, "chat-zoom-200.png") });
    await zoom.close();
  });

  await check("no script errors on the page", async () => {
    const ours = consoleErrors.filter((e) => !/ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(e));
    assert.deepEqual(ours, []);
  });
} finally {
  await browser.close();
}

writeFileSync(join(OUT, "results.json"), JSON.stringify(results, null, 2));
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed; screenshots and axe reports in ${OUT}`);
process.exit(failed);
