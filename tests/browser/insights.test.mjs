// Browser test of "Fragen ohne Antwort" (issue 35) in Debian's chromium, against the running
// `lotse serve` of run.sh (real models): a citizen asks the widget three questions of one kind
// that the Bad Boll website does not answer; an editor signs in to the portal and sees the
// topic with its count. axe stays clean on both.
// run.sh sets LOTSE_SITE, LOTSE_API, LOTSE_ARTIFACTS, LOTSE_INSIGHTS_USER and
// LOTSE_PORTAL_PASSWORD. Each check prints "ok" or "FAIL"; the exit code is the number of
// failures.

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const SITE = process.env.LOTSE_SITE;
const API = process.env.LOTSE_API;
const USER = process.env.LOTSE_INSIGHTS_USER;
const PASSWORD = process.env.LOTSE_PORTAL_PASSWORD;
const OUT = process.env.LOTSE_ARTIFACTS || "test-artifacts/browser";
const ANSWER_TIMEOUT = 15 * 60 * 1000;
// three wordings of one question the fixture site has no page for
const QUESTIONS = [
  "Wo kann ich in Bad Boll Schlittschuh laufen?",
  "Gibt es in Bad Boll eine Eisbahn zum Schlittschuhlaufen?",
  "Wo kann man im Winter Schlittschuh laufen?",
];
for (const [k, v] of Object.entries({ SITE, API, USER, PASSWORD })) {
  if (!v) { console.error(`${k} is not set`); process.exit(2); }
}
mkdirSync(OUT, { recursive: true });

const CHECK = readFileSync(new URL("../../crates/portal/assets/ki-kompass-check.toml", import.meta.url), "utf8");
const CORRECT = [...CHECK.matchAll(/^correct\s*=\s*(\d+)/gm)].map((m) => Number(m[1]));

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

/** Serious and critical axe violations; `only` keeps those whose target names it. */
async function axeSerious(page, label, only) {
  await page.addScriptTag({ content: AXE });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) }));
  });
  writeFileSync(join(OUT, `axe-${label}.json`), JSON.stringify(r, null, 2));
  return r
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .filter((v) => !only || v.nodes.some((n) => JSON.stringify(n).includes(only)))
    .map((v) => `${v.id}: ${v.help}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
try {
  const errors = [];

  await check("insights: the widget says that questions are kept without personal data", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${SITE}/`, { waitUntil: "load" });
    await page.locator("#lotse-chat .launcher").waitFor({ state: "visible", timeout: 30000 });
    await page.locator("#lotse-chat .launcher").click();
    await page.locator("#lotse-chat #lotse-privacy").waitFor({ state: "visible", timeout: 5000 });
    assert.match(await page.locator("#lotse-chat #lotse-privacy").innerText(), /speichern wir Ihre Frage bis zu 90 Tage lang, ohne persönliche Angaben/);
    for (const [i, q] of QUESTIONS.entries()) {
      await page.locator("#lotse-chat #lotse-q").fill(q);
      await page.keyboard.press("Enter");
      // the answer is done when its meta line (with the label) is there
      await page.locator("#lotse-chat .exchange .meta .label").nth(i).waitFor({ timeout: ANSWER_TIMEOUT });
    }
    const texts = await page.locator("#lotse-chat .exchange .bot .text").allInnerTexts();
    console.log(`      answers: ${texts.map((t) => t.slice(0, 60)).join(" | ")}`);
    await page.screenshot({ path: join(OUT, "insights-widget.png") });
    assert.deepEqual(await axeSerious(page, "insights-widget", "lotse"), []);
    await ctx.close();
  });

  await check("insights: an editor sees the topic with its count in the portal", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${API}/portal/`, { waitUntil: "load" });
    await page.locator("#login-name").waitFor({ state: "visible", timeout: 30000 });
    await page.fill("#login-name", USER);
    await page.fill("#login-password", PASSWORD);
    await page.getByRole("button", { name: "Anmelden" }).click();
    // the portal's workspace opens after the KI-Kompass check
    await page.locator("#frage-0-0").waitFor({ timeout: 15000 });
    for (const [qi, c] of CORRECT.entries()) await page.check(`#frage-${qi}-${c}`);
    await page.getByRole("button", { name: "Antworten abgeben" }).click();
    await page.getByRole("button", { name: "Weiter zum KI-Chat" }).click();
    await page.locator("#insights-h").waitFor({ timeout: 15000 });
    const topic = page.locator("article", { has: page.locator("h3", { hasText: /Schlittschuh|Eisbahn/ }) });
    await topic.first().waitFor({ timeout: 15000 });
    const heading = await topic.first().locator("h3").innerText();
    assert.match(heading, /\(3 Fragen\)$/, heading);
    const body = await topic.first().innerText();
    for (const q of QUESTIONS) assert.ok(body.includes(q), `sample "${q}" in ${body}`);
    const csv = await page.request.get(`${API}/portal/api/insights/topics?format=csv`);
    assert.equal(csv.status(), 200);
    assert.match(await csv.text(), /Schlittschuh/);
    await page.screenshot({ path: join(OUT, "insights-portal.png"), fullPage: true });
    assert.deepEqual(await axeSerious(page, "insights-portal"), []);
    await ctx.close();
  });

  await check("insights: no script errors", async () => {
    assert.deepEqual(errors, []);
  });
} finally {
  await browser.close();
}
writeFileSync(join(OUT, "insights-results.json"), JSON.stringify(results, null, 2));
const failed = results.filter((r) => !r.ok).length;
console.log(`insights: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed);
